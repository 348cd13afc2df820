// From API answers to what the charts draw: buckets, labels, deltas, reported tokens. Pure, tested.
import type { Schemas } from '../../api/client';
import type { Bucket } from '../../api/vocabulary';
import { type AnalyticsFilters, DAY_MS, windowOf } from './filters';

/** Relative change, or null when there is nothing to compare with. */
export function delta(current: number, previous: number | undefined | null): number | null {
  if (previous === undefined || previous === null || previous === 0) return null;
  return (current - previous) / previous;
}

/** Days to ask [`useReportedByDay`] for so that it covers the window (7 to 90), or null. */
export function reportedDays(f: AnalyticsFilters, now: number): number | null {
  const { from, to } = windowOf(f, now);
  const today = now - (now % DAY_MS);
  if (to <= today - 89 * DAY_MS) return null; // entirely older than the trend can reach
  const firstDay = from - (from % DAY_MS);
  const days = Math.ceil((today + DAY_MS - firstDay) / DAY_MS);
  return Math.min(90, Math.max(7, days));
}

/** Reported counter tokens of the UTC days that overlap the window. */
export function reportedInWindow(days: Schemas['TrendDay'][], from: number, to: number): number {
  return days.filter((d) => d.date + DAY_MS > from && d.date < to).reduce((sum, d) => sum + d.reported_tokens, 0);
}

/** A bucket's label: the hour in the browser's time zone, or the UTC day. */
export function bucketLabel(ts: number, bucket: Bucket, lang: string, multiDay: boolean): string {
  if (bucket === 'day') {
    return new Intl.DateTimeFormat(lang, { month: 'short', day: 'numeric', timeZone: 'UTC' }).format(ts);
  }
  const opts: Intl.DateTimeFormatOptions = multiDay
    ? { month: 'numeric', day: 'numeric', hour: '2-digit', minute: '2-digit' }
    : { hour: '2-digit', minute: '2-digit' };
  return new Intl.DateTimeFormat(lang, opts).format(ts);
}

export interface ChartData {
  labels: string[];
  calls: number[];
  tokens: number[];
  /** Mean latency; null where a bucket had no calls (a gap, not a zero). */
  avgLatency: (number | null)[];
  p95Latency: (number | null)[];
  /** Reported counter tokens per day; null when there are none to show. */
  reported: number[] | null;
  /** Whether any bucket had a call. */
  hasCalls: boolean;
}

/** Maps a series (and optionally the counters' daily figures) to the charts' arrays. */
export function seriesToChart(
  points: Schemas['SeriesPoint'][],
  bucket: Bucket,
  lang: string,
  reportedByDay?: Schemas['TrendDay'][],
): ChartData {
  const multiDay = points.length > 0 && points[points.length - 1].ts - points[0].ts > DAY_MS;
  let reported: number[] | null = null;
  if (bucket === 'day' && reportedByDay?.some((d) => d.reported_tokens > 0)) {
    const byDay = new Map(reportedByDay.map((d) => [d.date, d.reported_tokens]));
    reported = points.map((p) => byDay.get(p.ts) ?? 0);
  }
  return {
    labels: points.map((p) => bucketLabel(p.ts, bucket, lang, multiDay)),
    calls: points.map((p) => p.calls),
    tokens: points.map((p) => p.total_tokens),
    avgLatency: points.map((p) => (p.calls > 0 ? Math.round(p.avg_latency_ms * 10) / 10 : null)),
    p95Latency: points.map((p) => (p.calls > 0 ? (p.p95_latency_ms ?? null) : null)),
    reported,
    hasCalls: points.some((p) => p.calls > 0),
  };
}

/** The first `n` items and the rest folded into one "others" slice. */
export function foldOthers(items: { label: string; value: number }[], n: number, othersLabel: string) {
  if (items.length <= n) return items;
  const rest = items.slice(n).reduce((s, i) => s + i.value, 0);
  return [...items.slice(0, n), { label: othersLabel, value: rest }];
}
