// Counter names, defaults, what a reading does to a counter, and who may change one. Pure, tested.
import type { Schemas } from '../../api/client';
import type { Permissions } from '../../auth';

export type CounterStatus = Schemas['CounterStatus'];
export type ReadingView = Schemas['ReadingView'];

/** The counter shown when none is chosen (the server's `DEFAULT_COUNTER`). */
export const DEFAULT_COUNTER = 'default';
/** The quota a counter gets from its first reading (the server's `DEFAULT_QUOTA`). */
export const DEFAULT_QUOTA = 1_000_000;
/** Readings per history page. */
export const HISTORY_PAGE = 50;
/** Wait this long after the last keystroke before asking the server to parse. */
export const PARSE_DEBOUNCE_MS = 300;
/** Forms shown as a hint before anything is typed (the server sends its own list once it answers). */
export const EXAMPLES = ['350000', '350,000', '350 000', '350_000', '350K', '1.2M', '35万', '3.5亿', '350,000 tokens used'];
export const SYNC_TYPES = ['manual', 'clipboard', 'estimate', 'import', 'api'] as const;

/**
 * Whether `name` is a valid counter name, as the server checks it (`views::is_plain_name` and
 * `check_counter_name`): 1 to 64 bytes of letters, digits, `-`, `_` or `.`, and not `parse`.
 */
export function isCounterName(name: string): boolean {
  if (name === '' || name === 'parse') return false;
  if (new TextEncoder().encode(name).length > 64) return false;
  return /^[\p{Alphabetic}\p{N}_.-]+$/u.test(name);
}

/** What a reading will do to a counter. */
export interface ReadingPreview {
  /** `first`: no counter yet; `reset`: below what was used; `unchanged`: equal to it. */
  kind: 'first' | 'increment' | 'unchanged' | 'reset';
  /** Tokens the reading adds (for a reset, the reading itself, as the server stores it). */
  increment: number;
  /** Tokens used afterwards. */
  usedAfter: number;
}

/**
 * The increment a reading will produce, as the server computes it: `reading − used`, or, when the
 * reading is below what was used, a reset (used becomes the reading). `used` is null when the
 * counter does not exist yet.
 */
export function previewReading(used: number | null | undefined, reading: number): ReadingPreview {
  if (used === null || used === undefined) return { kind: 'first', increment: reading, usedAfter: reading };
  if (reading < used) return { kind: 'reset', increment: reading, usedAfter: reading };
  if (reading === used) return { kind: 'unchanged', increment: 0, usedAfter: used };
  return { kind: 'increment', increment: reading - used, usedAfter: reading };
}

/** Who may record on, and set the quota of, a counter (as the server checks it). */
export function counterRights(can: Permissions, counter: CounterStatus | null) {
  const team = counter?.team_id ?? null;
  return {
    // Instance-wide counters (and new ones, which are instance-wide) are open to everyone signed in.
    record: team === null || can.canCreateKeys(team),
    setQuota: counter !== null && (team === null ? can.isAdmin : can.canManage(team)),
  };
}

export function canReadClipboard(): boolean {
  return typeof navigator !== 'undefined' && typeof navigator.clipboard?.readText === 'function';
}

export function statusQueryKey(name: string) {
  return ['counters', 'status', name] as const;
}
