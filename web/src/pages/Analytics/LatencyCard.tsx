// Latency percentiles of the range: total, and upstream time to first byte and to last byte,
// from the latency sketches (within 2 %), or the coarse buckets' upper bounds where the API says
// `coarse` (upstream figures come from sketches only).
import type { Schemas } from '../../api/client';
import { BarList } from '../../components/charts';
import { Empty, Loading } from '../../components/ui';
import { millis } from '../../format';
import type { T } from './types';

type Row = [string, number | null | undefined];
type Summary = Schemas['SummaryView'];

const LABELS = ['p50', 'p90', 'p95', 'p99', 'p99.9'];

/** The five percentiles of one latency, labelled. */
function percentiles(values: (number | null | undefined)[]): Row[] {
  return LABELS.map((label, i) => [label, values[i]]);
}

function PercentileList({ rows, testid }: { rows: Row[]; testid: string }) {
  return (
    <dl className="latency-list" data-testid={testid}>
      {rows.map(([label, v]) => (
        <div key={label}>
          <dt>{label}</dt>
          <dd>{millis(v)}</dd>
        </div>
      ))}
    </dl>
  );
}

export function LatencyCard({ summary, t }: { summary?: Summary; t: T }) {
  const rows: Row[] = summary
    ? [
        [t('avg'), summary.avg_latency_ms],
        ...percentiles([
          summary.p50_latency_ms,
          summary.p90_latency_ms,
          summary.p95_latency_ms,
          summary.p99_latency_ms,
          summary.p999_latency_ms,
        ]),
      ]
    : [];
  // Upstream latencies, shown where some call has them: to the first byte, then to the last.
  const upstream: [string, string, Row[]][] = summary
    ? [
        [
          t('latency_upstream'),
          'latency-upstream',
          percentiles([
            summary.upstream_p50_latency_ms,
            summary.upstream_p90_latency_ms,
            summary.upstream_p95_latency_ms,
            summary.upstream_p99_latency_ms,
            summary.upstream_p999_latency_ms,
          ]),
        ],
        [
          t('latency_upstream_last_byte'),
          'latency-upstream-last-byte',
          percentiles([
            summary.upstream_last_byte_p50_ms,
            summary.upstream_last_byte_p90_ms,
            summary.upstream_last_byte_p95_ms,
            summary.upstream_last_byte_p99_ms,
            summary.upstream_last_byte_p999_ms,
          ]),
        ],
      ]
    : [];
  return (
    <section className="card" aria-labelledby="an-latency">
      <h2 id="an-latency">{t('latency_title')}</h2>
      <p className="muted small-text">{summary?.coarse ? t('latency_coarse') : t('latency_desc')}</p>
      {!summary ? (
        <Loading />
      ) : summary.calls === 0 ? (
        <Empty>{t('no_calls')}</Empty>
      ) : (
        <>
          <PercentileList rows={rows} testid="latency-total" />
          <BarList
            label={t('latency_chart')}
            items={rows.map(([label, v]) => ({ label, value: v ?? 0 }))}
            format={millis}
          />
          {upstream
            .filter(([, , list]) => list.some(([, v]) => v != null))
            .map(([title, testid, list]) => (
              <div key={testid}>
                <h3 className="small-text">{title}</h3>
                <PercentileList rows={list} testid={testid} />
              </div>
            ))}
        </>
      )}
    </section>
  );
}
