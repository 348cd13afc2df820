// Latency percentiles of the range.
import type { Schemas } from '../../api/client';
import { BarList } from '../../components/charts';
import { Empty, Loading } from '../../components/ui';
import { millis } from '../../format';
import type { T } from './types';

export function LatencyCard({ summary, t }: { summary?: Schemas['SummaryView']; t: T }) {
  const rows: [string, number | null | undefined][] = summary
    ? [
        [t('avg'), summary.avg_latency_ms],
        ['p50', summary.p50_latency_ms],
        ['p95', summary.p95_latency_ms],
        ['p99', summary.p99_latency_ms],
      ]
    : [];
  return (
    <section className="card" aria-labelledby="an-latency">
      <h2 id="an-latency">{t('latency_title')}</h2>
      <p className="muted small-text">{t('latency_desc')}</p>
      {!summary ? (
        <Loading />
      ) : summary.calls === 0 ? (
        <Empty>{t('no_calls')}</Empty>
      ) : (
        <>
          <dl className="latency-list">
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
        </>
      )}
    </section>
  );
}
