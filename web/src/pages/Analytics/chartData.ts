// From API answers to what the charts draw: buckets, labels, deltas, reported tokens. Pure, tested.
import type { Schemas } from '../../api/client';
import type { Bucket } from '../../api/vocabulary';
import { DAY_MS } from './filters';

/** Relative change, or null when there is nothing to compare with. */
export function delta(current: number, previous: number | undefined | null): number | null {
  if (previous === undefined || previous === null || previous === 0) return null;
  return (current - previous) / previous;
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

/** Maps a series to the charts' arrays; day points carry the counters' reported tokens. */
export function seriesToChart(points: Schemas['SeriesPoint'][], bucket: Bucket, lang: string): ChartData {
  const multiDay = points.length > 0 && points[points.length - 1].ts - points[0].ts > DAY_MS;
  const reported =
    bucket === 'day' && points.some((p) => (p.reported_tokens ?? 0) > 0)
      ? points.map((p) => p.reported_tokens ?? 0)
      : null;
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
