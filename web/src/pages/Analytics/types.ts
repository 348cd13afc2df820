// Types the page's components share.
import type { Schemas } from '../../api/client';

export type Item = Schemas['TopItem'];
export type T = (key: string, opts?: Record<string, unknown>) => string;
