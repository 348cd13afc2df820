import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanup, fireEvent, render, screen } from '@testing-library/react';
import type { Schemas } from '../../api/client';
import { FilterBar } from './FilterBar';
import { LatencyCard } from './LatencyCard';
import { bucketLabel, delta, foldOthers, seriesToChart } from './chartData';
import {
  DAY_MS,
  HOUR_MS,
  bucketOf,
  exportHref,
  filtersToParams,
  last24hQuery,
  parseFilters,
  pickBucket,
  previousQuery,
  rangeError,
  seriesQuery,
  usageQuery,
  windowOf,
  type AnalyticsFilters,
} from './filters';

const parse = (qs: string) => parseFilters(new URLSearchParams(qs));
const NOW = Date.UTC(2026, 10, 23, 17, 56, 0); // 2026-11-23T17:56:00Z

function point(ts: number, calls: number, extra: Partial<Schemas['SeriesPoint']> = {}): Schemas['SeriesPoint'] {
  return {
    ts,
    calls,
    errors: 0,
    success_rate: 1,
    avg_latency_ms: calls ? 120 : 0,
    p50_latency_ms: calls ? 100 : null,
    p90_latency_ms: calls ? 250 : null,
    p95_latency_ms: calls ? 300 : null,
    p99_latency_ms: calls ? 500 : null,
    p999_latency_ms: calls ? 900 : null,
    coarse: false,
    upstream_p50_latency_ms: null,
    upstream_p90_latency_ms: null,
    upstream_p95_latency_ms: null,
    upstream_p99_latency_ms: null,
    upstream_p999_latency_ms: null,
    upstream_last_byte_p50_ms: null,
    upstream_last_byte_p90_ms: null,
    upstream_last_byte_p95_ms: null,
    upstream_last_byte_p99_ms: null,
    upstream_last_byte_p999_ms: null,
    prompt_tokens: calls * 10,
    completion_tokens: calls * 5,
    total_tokens: calls * 15,
    cached_tokens: 0,
    reasoning_tokens: 0,
    estimated_calls: 0,
    cost_usd: 0,
    unpriced_calls: 0,
    ...extra,
  };
}

describe('URL params ⇄ filters', () => {
  it('defaults to 7 days ranked by calls and ignores junk', () => {
    expect(parse('')).toEqual({ range: '7d', order: 'calls' });
    const f = parse('range=1y&team_id=abc&key_id=-3&route_id=0&status_class=7&order=cost');
    expect(f.range).toBe('7d');
    expect(f.team_id).toBeUndefined();
    expect(f.key_id).toBeUndefined();
    expect(f.route_id).toBeUndefined();
    expect(f.status_class).toBeUndefined();
    expect(f.order).toBe('calls');
  });

  it('reads every filter', () => {
    const f = parse('range=30d&team_id=2&key_id=5&route_id=3&model=gpt-4o&status_class=5&order=tokens');
    expect(f).toEqual({
      range: '30d',
      team_id: 2,
      key_id: 5,
      route_id: 3,
      model: 'gpt-4o',
      status_class: 5,
      order: 'tokens',
    });
  });

  it('reads a custom range as ISO or epoch ms, and drops from/to for presets', () => {
    const iso = parse('range=custom&from=2026-11-01T00:00:00.000Z&to=1793577600000');
    expect(iso).toMatchObject({ range: 'custom', from: Date.UTC(2026, 10, 1), to: 1793577600000 });
    expect(parse('from=2026-11-01T00:00:00Z').range).toBe('custom');
    expect(parse('range=24h&from=2026-11-01T00:00:00Z').from).toBeUndefined();
  });

  it('round-trips and keeps links short', () => {
    const f: AnalyticsFilters = {
      range: 'custom',
      from: Date.UTC(2026, 10, 1),
      to: Date.UTC(2026, 10, 8),
      team_id: 2,
      model: 'claude-sonnet-4',
      status_class: 4,
      order: 'tokens',
    };
    expect(parse(filtersToParams(f).toString())).toEqual(f);
    expect(filtersToParams({ range: '7d', order: 'calls' }).toString()).toBe('');
    expect(filtersToParams({ range: '90d', order: 'calls', key_id: 9 }).toString()).toBe('range=90d&key_id=9');
  });
});

describe('range checks mirror the API', () => {
  it('accepts presets and sane custom ranges', () => {
    expect(rangeError({ range: '90d' })).toBeNull();
    expect(rangeError({ range: 'custom', from: 0, to: DAY_MS })).toBeNull();
    expect(rangeError({ range: 'custom', from: 0, to: 400 * DAY_MS })).toBeNull();
  });
  it('refuses what the server would refuse', () => {
    expect(rangeError({ range: 'custom', from: 5 })).toBe('err_custom_missing');
    expect(rangeError({ range: 'custom', from: 10, to: 10 })).toBe('err_custom_order');
    expect(rangeError({ range: 'custom', from: 0, to: 400 * DAY_MS + 1 })).toBe('err_custom_long');
    expect(rangeError({ range: 'custom', from: -1, to: 10 })).toBe('err_custom_bounds');
    expect(rangeError({ range: 'custom', from: 0, to: 253_402_300_799_000 })).toBe('err_custom_bounds');
  });
});

describe('hourly or daily', () => {
  it('uses hours up to exactly 7 days and days beyond', () => {
    expect(pickBucket(DAY_MS)).toBe('hour');
    expect(pickBucket(7 * DAY_MS)).toBe('hour');
    expect(pickBucket(7 * DAY_MS + 1)).toBe('day');
    expect(bucketOf({ range: '24h', order: 'calls' })).toBe('hour');
    expect(bucketOf({ range: '7d', order: 'calls' })).toBe('hour');
    expect(bucketOf({ range: '30d', order: 'calls' })).toBe('day');
    expect(bucketOf({ range: 'custom', from: 0, to: 8 * DAY_MS, order: 'calls' })).toBe('day');
  });
});

describe('API queries', () => {
  it('sends presets as range and custom ranges as from/to, never both', () => {
    expect(usageQuery({ range: '30d', order: 'tokens', team_id: 3, status_class: 5 })).toEqual({
      range: '30d',
      team_id: 3,
      status_class: 5,
    });
    const custom = usageQuery({ range: 'custom', from: 1000, to: 2000, order: 'calls', model: 'gpt-4o' });
    expect(custom).toEqual({ from: 1000, to: 2000, model: 'gpt-4o' });
    expect(custom).not.toHaveProperty('range');
  });

  it('asks for the bucket the API allows', () => {
    expect(seriesQuery({ range: '7d', order: 'calls' })).toEqual({ range: '7d', bucket: 'hour' });
    expect(seriesQuery({ range: '90d', order: 'calls', key_id: 4 })).toEqual({ range: '90d', key_id: 4, bucket: 'day' });
  });

  it('shares the 24-hour query with the 24h preset, and ends it at a custom range end', () => {
    const f: AnalyticsFilters = { range: '24h', order: 'calls', route_id: 2 };
    expect(last24hQuery(f)).toEqual(seriesQuery(f));
    expect(last24hQuery({ range: 'custom', from: 0, to: 10 * DAY_MS, order: 'calls' })).toEqual({
      from: 9 * DAY_MS,
      to: 10 * DAY_MS,
      bucket: 'hour',
    });
  });

  it('compares with the window just before, in whole minutes', () => {
    const q = previousQuery({ range: '7d', order: 'calls', team_id: 1 }, NOW);
    expect(q).toEqual({ from: NOW - 14 * DAY_MS, to: NOW - 7 * DAY_MS, team_id: 1 });
    const odd = previousQuery({ range: '24h', order: 'calls' }, NOW + 12_345);
    expect(odd?.to).toBe(NOW - DAY_MS);
    expect(previousQuery({ range: 'custom', from: 10, to: 100, order: 'calls' }, NOW)).toBeNull();
  });

  it('computes relative change', () => {
    expect(delta(110, 100)).toBeCloseTo(0.1);
    expect(delta(50, 100)).toBeCloseTo(-0.5);
    expect(delta(5, 0)).toBeNull();
    expect(delta(5, undefined)).toBeNull();
  });
});

describe('exports', () => {
  it('passes the window as from/to (the export has no range) with the filters', () => {
    const f: AnalyticsFilters = { range: '24h', order: 'calls', team_id: 2, status_class: 4 };
    const url = new URL(exportHref(f, 'events', 'ndjson', NOW), 'http://x');
    expect(url.pathname).toBe('/api/v1/usage/export');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      format: 'ndjson',
      from: String(NOW - DAY_MS),
      to: String(NOW),
      team_id: '2',
      dataset: 'events',
      status: '4xx',
    });
  });
  it('exports series with the right bucket and top-N by dimension', () => {
    const series = new URL(exportHref({ range: '30d', order: 'calls' }, 'series', 'csv', NOW), 'http://x');
    expect(series.searchParams.get('bucket')).toBe('day');
    expect(series.searchParams.get('dataset')).toBe('series');
    expect(series.searchParams.has('status')).toBe(false);
    const top = new URL(exportHref({ range: '7d', order: 'calls', model: 'gpt-4o' }, 'top_model', 'json', NOW), 'http://x');
    expect(top.searchParams.get('dataset')).toBe('top');
    expect(top.searchParams.get('by')).toBe('model');
    expect(top.searchParams.get('model')).toBe('gpt-4o');
    expect(windowOf({ range: '7d', order: 'calls' }, NOW)).toEqual({ from: NOW - 7 * DAY_MS, to: NOW });
  });
});

describe('series → chart data', () => {
  const t0 = Date.UTC(2026, 10, 23, 0);
  it('maps calls and tokens, with latency gaps where a bucket had no calls', () => {
    const points = [point(t0, 3), point(t0 + HOUR_MS, 0), point(t0 + 2 * HOUR_MS, 2, { p95_latency_ms: null })];
    const c = seriesToChart(points, 'hour', 'en');
    expect(c.labels).toHaveLength(3);
    expect(c.calls).toEqual([3, 0, 2]);
    expect(c.tokens).toEqual([45, 0, 30]);
    expect(c.avgLatency).toEqual([120, null, 120]);
    expect(c.p95Latency).toEqual([300, null, null]);
    expect(c.reported).toBeNull();
    expect(c.hasCalls).toBe(true);
    expect(seriesToChart([point(t0, 0)], 'hour', 'en').hasCalls).toBe(false);
  });

  it('labels days by their UTC date and adds reported tokens on daily charts only', () => {
    const points = [point(t0, 1, { reported_tokens: 0 }), point(t0 + DAY_MS, 1, { reported_tokens: 500 })];
    const c = seriesToChart(points, 'day', 'en');
    expect(c.labels).toEqual(['Nov 23', 'Nov 24']);
    expect(c.reported).toEqual([0, 500]);
    expect(seriesToChart(points, 'hour', 'en').reported).toBeNull();
    expect(seriesToChart([point(t0, 1, { reported_tokens: 0 })], 'day', 'en').reported).toBeNull();
    expect(seriesToChart([point(t0, 1)], 'day', 'en').reported).toBeNull();
  });

  it('labels hours with the date only when the series spans more than a day', () => {
    expect(bucketLabel(t0, 'hour', 'en', false)).not.toMatch(/\//);
    expect(bucketLabel(t0, 'hour', 'en', true)).toMatch(/\d+\/\d+/);
  });

  it('folds the tail of a distribution into "others"', () => {
    const items = [5, 4, 3, 2, 1].map((v, i) => ({ label: `r${i}`, value: v }));
    expect(foldOthers(items, 3, 'Others')).toEqual([...items.slice(0, 3), { label: 'Others', value: 3 }]);
    expect(foldOthers(items, 5, 'Others')).toEqual(items);
  });
});

describe('FilterBar', () => {
  afterEach(cleanup);
  const t = (key: string, opts?: Record<string, unknown>) => (opts ? `${key}:${JSON.stringify(opts)}` : key);

  it('applies a valid custom range and refuses an inverted one', () => {
    const update = vi.fn();
    const filters: AnalyticsFilters = { range: 'custom', from: NOW - DAY_MS, to: NOW, order: 'calls' };
    render(
      <FilterBar
        filters={filters}
        update={update}
        onClear={() => {}}
        teams={[]}
        routes={[]}
        keys={[]}
        models={[]}
        invalid={null}
        t={t}
        now={NOW}
      />,
    );
    const from = screen.getByLabelText('from') as HTMLInputElement;
    const to = screen.getByLabelText('to') as HTMLInputElement;
    const apply = screen.getByRole('button', { name: 'apply' });
    expect((apply as HTMLButtonElement).disabled).toBe(false);
    fireEvent.change(from, { target: { value: '2026-11-20T10:00' } });
    fireEvent.change(to, { target: { value: '2026-11-19T10:00' } });
    expect(screen.getByRole('alert').textContent).toBe('err_custom_order');
    expect((apply as HTMLButtonElement).disabled).toBe(true);
    fireEvent.change(to, { target: { value: '2026-11-21T10:00' } });
    fireEvent.click(apply);
    expect(update).toHaveBeenCalledWith({
      range: 'custom',
      from: new Date('2026-11-20T10:00').getTime(),
      to: new Date('2026-11-21T10:00').getTime(),
    });
  });

  it('switching to a preset clears the custom window; choosing a team drops a key of another team', () => {
    const update = vi.fn();
    const key = { id: 7, team_id: 1, name: 'k', prefix: 'ntk_…' } as Schemas['KeyView'];
    render(
      <FilterBar
        filters={{ range: '7d', order: 'calls', key_id: 7 }}
        update={update}
        onClear={() => {}}
        teams={[
          { id: 1, name: 'one', created_at: 0 },
          { id: 2, name: 'two', created_at: 0 },
        ]}
        routes={[]}
        keys={[key]}
        models={['gpt-4o']}
        invalid={null}
        t={t}
        now={NOW}
      />,
    );
    fireEvent.click(screen.getByRole('button', { name: 'common:range_30d' }));
    expect(update).toHaveBeenLastCalledWith({ range: '30d', from: undefined, to: undefined });
    fireEvent.change(screen.getByLabelText('common:team'), { target: { value: '2' } });
    expect(update).toHaveBeenLastCalledWith({ team_id: 2, key_id: undefined });
    fireEvent.change(screen.getByLabelText('common:team'), { target: { value: '1' } });
    expect(update).toHaveBeenLastCalledWith({ team_id: 1, key_id: 7 });
    fireEvent.click(screen.getByRole('button', { name: 'custom' }));
    expect(update).toHaveBeenLastCalledWith({ range: 'custom', from: NOW - 7 * DAY_MS, to: NOW });
  });
});

describe('LatencyCard', () => {
  afterEach(cleanup);
  const t = (key: string) => key;
  const summary = (extra: Partial<Schemas['SummaryView']>): Schemas['SummaryView'] => ({
    ...point(0, 10),
    from: 0,
    to: HOUR_MS,
    reported_tokens: 0,
    ...extra,
  });

  it('shows p50 to p99.9, and the upstream ones when calls reached an upstream', () => {
    render(
      <LatencyCard
        summary={summary({
          upstream_p50_latency_ms: 80,
          upstream_p999_latency_ms: 700,
          upstream_last_byte_p50_ms: 900,
          upstream_last_byte_p999_ms: 4200,
        })}
        t={t}
      />,
    );
    const total = screen.getByTestId('latency-total').textContent ?? '';
    for (const label of ['p50', 'p90', 'p95', 'p99', 'p99.9']) expect(total).toContain(label);
    expect(screen.getByTestId('latency-upstream').textContent).toContain('p99.9');
    expect(screen.getByText('latency_upstream_last_byte')).toBeTruthy();
    const lastByte = screen.getByTestId('latency-upstream-last-byte').textContent ?? '';
    expect(lastByte).toContain('p50');
    expect(lastByte).toContain('4.2 s');
    expect(screen.getByText('latency_desc')).toBeTruthy();
  });

  it('says when the percentiles are coarse buckets and hides an empty upstream', () => {
    render(<LatencyCard summary={summary({ coarse: true })} t={t} />);
    expect(screen.getByText('latency_coarse')).toBeTruthy();
    expect(screen.queryByTestId('latency-upstream')).toBeNull();
    expect(screen.queryByTestId('latency-upstream-last-byte')).toBeNull();
  });

  it('shows the time to first byte alone for calls recorded without their last byte', () => {
    render(<LatencyCard summary={summary({ upstream_p95_latency_ms: 80 })} t={t} />);
    expect(screen.getByTestId('latency-upstream')).toBeTruthy();
    expect(screen.queryByTestId('latency-upstream-last-byte')).toBeNull();
  });
});
