// Latency percentiles of the range: total and upstream (time to first byte), from the latency
// sketches (within 2 %), or the coarse buckets' upper bounds where the API says `coarse`.
import type { Schemas } from '../../api/client';
import { BarList } from '../../components/charts';
import { Empty, Loading } from '../../components/ui';
import { millis } from '../../format';
import type { T } from './types';

type Row = [string, number | null | undefined];

export function LatencyCard({ summary, t }: { summary?: Schemas['SummaryView']; t: T }) {
  const rows: Row[] = summary
    ? [
        [t('avg'), summary.avg_latency_ms],
        ['p50', summary.p50_latency_ms],
        ['p90', summary.p90_latency_ms],
        ['p95', summary.p95_latency_ms],
        ['p99', summary.p99_latency_ms],
        ['p99.9', summary.p999_latency_ms],
      ]
    : [];
  const upstream: Row[] = summary
    ? [
        ['p50', summary.upstream_p50_latency_ms],
        ['p90', summary.upstream_p90_latency_ms],
        ['p95', summary.upstream_p95_latency_ms],
        ['p99', summary.upstream_p99_latency_ms],
        ['p99.9', summary.upstream_p999_latency_ms],
      ]
    : [];
  const hasUpstream = upstream.some(([, v]) => v != null);
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
          <dl className="latency-list" data-testid="latency-total">
            {rows.map(([label, v]) => (
              <div key={label}>
                <dt>{label}</dt>
                <dd>{millis(v)}</dd>
              </div>
            ))}
          </dl>
          <BarList
            label={t('latency_chart')}
            items={rows.map(([label, v]) => ({ label, value: v ?? 0 }))}
            format={millis}
          />
          {hasUpstream && (
            <>
              <h3 className="small-text">{t('latency_upstream')}</h3>
              <dl className="latency-list" data-testid="latency-upstream">
                {upstream.map(([label, v]) => (
                  <div key={label}>
                    <dt>{label}</dt>
                    <dd>{millis(v)}</dd>
                  </div>
                ))}
              </dl>
            </>
          )}
        </>
      )}
    </section>
  );
}
