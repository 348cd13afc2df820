// The page's model: filters ⇄ URL ⇄ API query. Pure, tested.
import type { Schemas } from '../../api/client';
import type { operations } from '../../api/schema';
import { positiveInt } from '../../params';

export type LogEntry = Schemas['LogEntry'];
export type LogApiQuery = NonNullable<operations['logs']['parameters']['query']>;

// ---------------------------------------------------------------------------------------------
// Filters ⇄ URL ⇄ API query (pure, tested)

export const RANGES = ['1h', '24h', '7d', '30d', 'all', 'custom'] as const;
export type RangePreset = (typeof RANGES)[number];
export const RANGE_MS: Record<Exclude<RangePreset, 'all' | 'custom'>, number> = {
  '1h': 3_600_000,
  '24h': 86_400_000,
  '7d': 7 * 86_400_000,
  '30d': 30 * 86_400_000,
};
export const DEFAULT_RANGE: RangePreset = '24h';
/** Rows per request. */
export const PAGE_SIZE = 100;
/** Rows after which scrolling stops fetching by itself (the button still loads more). */
export const AUTO_LOAD_LIMIT = 5_000;

export interface LogFilters {
  q: string;
  range: RangePreset;
  /** Custom range start / end, epoch ms. */
  from?: number;
  to?: number;
  team_id?: number;
  key_id?: number;
  route_id?: number;
  model?: string;
  /** An exact status (`429`) or a class (`4xx`). */
  status?: string;
}

const STATUS_RE = /^([2-5]xx|[1-5]\d\d)$/;

function epochParam(text: string | null): number | undefined {
  if (!text || !/^\d{1,15}$/.test(text)) return undefined;
  return Number(text);
}

/** Reads the filters from the page's search params; anything malformed is ignored. */
export function filtersFromParams(params: URLSearchParams): LogFilters {
  const rangeText = params.get('range');
  let range: RangePreset = (RANGES as readonly string[]).includes(rangeText ?? '')
    ? (rangeText as RangePreset)
    : DEFAULT_RANGE;
  const from = epochParam(params.get('from'));
  const to = epochParam(params.get('to'));
  // A link with only from/to is a custom range.
  if (!rangeText && (from !== undefined || to !== undefined)) range = 'custom';
  const status = params.get('status')?.toLowerCase() ?? '';
  const model = params.get('model') ?? '';
  return {
    q: (params.get('q') ?? '').slice(0, 200),
    range,
    ...(range === 'custom' && from !== undefined ? { from } : {}),
    ...(range === 'custom' && to !== undefined ? { to } : {}),
    ...(positiveInt(params.get('team')) ? { team_id: positiveInt(params.get('team')) } : {}),
    ...(positiveInt(params.get('key')) ? { key_id: positiveInt(params.get('key')) } : {}),
    ...(positiveInt(params.get('route')) ? { route_id: positiveInt(params.get('route')) } : {}),
    ...(model ? { model: model.slice(0, 200) } : {}),
    ...(STATUS_RE.test(status) ? { status } : {}),
  };
}

/** Writes the filters as search params (defaults left out), keeping unrelated params such as `call`. */
export function filtersToParams(f: LogFilters, base?: URLSearchParams): URLSearchParams {
  const p = new URLSearchParams(base);
  for (const k of ['q', 'range', 'from', 'to', 'team', 'key', 'route', 'model', 'status']) p.delete(k);
  if (f.q.trim()) p.set('q', f.q.trim());
  if (f.range !== DEFAULT_RANGE) p.set('range', f.range);
  if (f.range === 'custom') {
    if (f.from !== undefined) p.set('from', String(f.from));
    if (f.to !== undefined) p.set('to', String(f.to));
  }
  if (f.team_id) p.set('team', String(f.team_id));
  if (f.key_id) p.set('key', String(f.key_id));
  if (f.route_id) p.set('route', String(f.route_id));
  if (f.model) p.set('model', f.model);
  if (f.status) p.set('status', f.status);
  return p;
}

/** The time window of the filters at `now`: preset ranges end now (open-ended). */
export function timeWindow(f: LogFilters, now: number): { from?: number; to?: number } {
  if (f.range === 'all') return {};
  if (f.range === 'custom') return { from: f.from, to: f.to };
  return { from: now - RANGE_MS[f.range] };
}

/** Whether a custom range is backwards (the API would refuse it). */
export function badRange(f: LogFilters): boolean {
  return f.range === 'custom' && f.from !== undefined && f.to !== undefined && f.from >= f.to;
}

/** The `/api/v1/logs` query for the filters at `now` (without cursor). */
export function apiQuery(f: LogFilters, now: number): LogApiQuery {
  const q: LogApiQuery = { limit: PAGE_SIZE, ...timeWindow(f, now) };
  if (q.from === undefined) delete q.from;
  if (q.to === undefined) delete q.to;
  if (f.q.trim()) q.q = f.q.trim();
  if (f.team_id) q.team_id = f.team_id;
  if (f.key_id) q.key_id = f.key_id;
  if (f.route_id) q.route_id = f.route_id;
  if (f.model) q.model = f.model;
  if (f.status) q.status = f.status;
  return q;
}
