// The page's model: URL params ⇄ filters ⇄ API queries (and export links). Pure, tested.
import { downloadUrl } from '../../api/client';
import type { SeriesQuery, UsageQuery } from '../../api/queries';
import type { operations } from '../../api/schema';
import { isSortOrder, type Bucket, type ExportFormat, type Grouping, type SortOrder } from '../../api/vocabulary';
import { positiveInt } from '../../params';

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;
/** The API refuses ranges longer than this (`usage.rs`: `MAX_RANGE_MS`). */
export const MAX_RANGE_MS = 400 * DAY_MS;
/** The API refuses times from the year 9999 on (`views.rs`: `MAX_TIME_MS`). */
export const MAX_TIME_MS = 253_402_300_799_000;
/** Hourly series cover at most 7 days (`usage.rs`: `series`). */
export const MAX_HOURLY_SPAN_MS = 7 * DAY_MS;

export const PRESETS = ['24h', '7d', '30d', '90d'] as const;
export type Preset = (typeof PRESETS)[number];
export const PRESET_MS: Record<Preset, number> = {
  '24h': DAY_MS,
  '7d': 7 * DAY_MS,
  '30d': 30 * DAY_MS,
  '90d': 90 * DAY_MS,
};
export const DEFAULT_PRESET: Preset = '7d';

export type Order = SortOrder;
export type StatusClass = 2 | 3 | 4 | 5;

/** What the page shows, as read from the URL. */
export interface AnalyticsFilters {
  range: Preset | 'custom';
  /** Custom range start, epoch ms. */
  from?: number;
  /** Custom range end (exclusive), epoch ms. */
  to?: number;
  team_id?: number;
  key_id?: number;
  route_id?: number;
  model?: string;
  status_class?: StatusClass;
  order: Order;
}

export type ExportQuery = NonNullable<operations['export']['parameters']['query']>;

/** An instant in the URL: ISO 8601 (what the page writes) or epoch ms. */
export function parseInstant(text: string | null): number | undefined {
  if (!text) return undefined;
  const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  return Number.isFinite(ms) ? ms : undefined;
}

/** The order in the URL, or `calls` (the API's default). */
function sortOrderOf(text: string | null): SortOrder {
  return isSortOrder(text) ? text : 'calls';
}

/** Reads the filters from the URL's search params; anything unknown falls back to the default. */
export function parseFilters(params: URLSearchParams): AnalyticsFilters {
  const raw = params.get('range');
  const from = parseInstant(params.get('from'));
  const to = parseInstant(params.get('to'));
  const range: AnalyticsFilters['range'] =
    raw === 'custom' || (raw === null && from !== undefined)
      ? 'custom'
      : (PRESETS as readonly string[]).includes(raw ?? '')
        ? (raw as Preset)
        : DEFAULT_PRESET;
  const status = Number(params.get('status_class'));
  const model = params.get('model');
  return {
    range,
    ...(range === 'custom' ? { from, to } : {}),
    team_id: positiveInt(params.get('team_id')),
    key_id: positiveInt(params.get('key_id')),
    route_id: positiveInt(params.get('route_id')),
    model: model ? model.slice(0, 200) : undefined,
    status_class: [2, 3, 4, 5].includes(status) ? (status as StatusClass) : undefined,
    order: sortOrderOf(params.get('order')),
  };
}

/** Writes filters back as search params, leaving out defaults so that links stay short. */
export function filtersToParams(f: AnalyticsFilters): URLSearchParams {
  const p = new URLSearchParams();
  if (f.range === 'custom') {
    p.set('range', 'custom');
    if (f.from !== undefined) p.set('from', new Date(f.from).toISOString());
    if (f.to !== undefined) p.set('to', new Date(f.to).toISOString());
  } else if (f.range !== DEFAULT_PRESET) {
    p.set('range', f.range);
  }
  if (f.team_id) p.set('team_id', String(f.team_id));
  if (f.key_id) p.set('key_id', String(f.key_id));
  if (f.route_id) p.set('route_id', String(f.route_id));
  if (f.model) p.set('model', f.model);
  if (f.status_class) p.set('status_class', String(f.status_class));
  if (f.order !== 'calls') p.set('order', f.order);
  return p;
}

export type RangeError = 'err_custom_missing' | 'err_custom_order' | 'err_custom_long' | 'err_custom_bounds';

/** Why the API would refuse this range (the same checks as `UsageQuery::scope`), or null. */
export function rangeError(f: Pick<AnalyticsFilters, 'range' | 'from' | 'to'>): RangeError | null {
  if (f.range !== 'custom') return null;
  if (f.from === undefined || f.to === undefined) return 'err_custom_missing';
  if (f.from < 0 || f.to >= MAX_TIME_MS) return 'err_custom_bounds';
  if (f.from >= f.to) return 'err_custom_order';
  if (f.to - f.from > MAX_RANGE_MS) return 'err_custom_long';
  return null;
}

/** The window the filters cover, epoch ms (presets end now). */
export function windowOf(f: AnalyticsFilters, now: number): { from: number; to: number } {
  if (f.range === 'custom') return { from: f.from ?? now - DAY_MS, to: f.to ?? now };
  return { from: now - PRESET_MS[f.range], to: now };
}

/** Hourly buckets up to 7 days (the API's limit), daily beyond. */
export function pickBucket(spanMs: number): Bucket {
  return spanMs <= MAX_HOURLY_SPAN_MS ? 'hour' : 'day';
}

/** The bucket of the filters' range. */
export function bucketOf(f: AnalyticsFilters): Bucket {
  return pickBucket(f.range === 'custom' ? (f.to ?? 0) - (f.from ?? 0) : PRESET_MS[f.range]);
}

/** The filters other than time, as API query fields. */
function dimensionQuery(f: AnalyticsFilters): UsageQuery {
  const q: UsageQuery = {};
  if (f.team_id) q.team_id = f.team_id;
  if (f.key_id) q.key_id = f.key_id;
  if (f.route_id) q.route_id = f.route_id;
  if (f.model) q.model = f.model;
  if (f.status_class) q.status_class = f.status_class;
  return q;
}

/**
 * The query of `/api/v1/usage/summary` (and the base of series and top): a preset is sent as
 * `range` so that the server's clock ends it; a custom range as `from` and `to` (never both forms).
 */
export function usageQuery(f: AnalyticsFilters): UsageQuery {
  const time: UsageQuery = f.range === 'custom' ? { from: f.from, to: f.to } : { range: f.range };
  return { ...time, ...dimensionQuery(f) };
}

/** The series of the selected range, with the bucket the API allows for it. */
export function seriesQuery(f: AnalyticsFilters): SeriesQuery {
  return { ...usageQuery(f), bucket: bucketOf(f) };
}

/** The last 24 hours (ending at a custom range's end), hourly. Same query as a 24h preset's series. */
export function last24hQuery(f: AnalyticsFilters): SeriesQuery {
  const time: SeriesQuery =
    f.range === 'custom' && f.to !== undefined ? { from: f.to - DAY_MS, to: f.to } : { range: '24h' };
  return { ...time, ...dimensionQuery(f), bucket: 'hour' };
}

/** The window just before the selected one, for "vs previous period"; null beyond the API's reach. */
export function previousQuery(f: AnalyticsFilters, now: number): UsageQuery | null {
  const { from, to } = windowOf(f, now);
  const span = to - from;
  const prevFrom = from - span;
  if (prevFrom < 0 || span <= 0) return null;
  // Whole minutes, so the query (and its cache key) stays the same between renders.
  const end = Math.floor(from / 60_000) * 60_000;
  return { from: end - span, to: end, ...dimensionQuery(f) };
}

/** What an export holds: raw events, the series, or a top-N by one of the server's groupings. */
export type ExportDataset = 'events' | 'series' | `top_${Exclude<Grouping, 'status_class'>}`;

/** The export URL of a dataset with the current filters (the export takes `from`/`to`, not `range`). */
export function exportHref(f: AnalyticsFilters, dataset: ExportDataset, format: ExportFormat, now: number): string {
  const { from, to } = windowOf(f, now);
  const q: ExportQuery = { format, from, to };
  if (f.team_id) q.team_id = f.team_id;
  if (f.key_id) q.key_id = f.key_id;
  if (f.route_id) q.route_id = f.route_id;
  if (f.model) q.model = f.model;
  if (dataset === 'events') {
    q.dataset = 'events';
    if (f.status_class) q.status = `${f.status_class}xx`;
  } else if (dataset === 'series') {
    q.dataset = 'series';
    q.bucket = pickBucket(to - from);
  } else {
    q.dataset = 'top';
    q.by = dataset.slice(4) as Grouping;
  }
  return downloadUrl('/api/v1/usage/export', q as Record<string, string | number | undefined>);
}

/** Only the time part of the filters (for the model options). */
export function windowQuery(f: AnalyticsFilters): UsageQuery {
  return f.range === 'custom' ? { from: f.from, to: f.to } : { range: f.range };
}
