// The headline figures, each with its change against the previous period.
import type { Schemas } from '../../api/client';
import { Loading, Num, StatCard } from '../../components/ui';
import { millis, percent } from '../../format';
import { delta } from './chartData';
import type { T } from './types';
import { Cost } from '../../components/Cost';

function signedPercent(ratio: number, lang: string): string {
  if (Math.abs(ratio) > 9.99) {
    return `${ratio > 0 ? '>+' : '<−'}${new Intl.NumberFormat(lang, { style: 'percent' }).format(9.99)}`;
  }
  return new Intl.NumberFormat(lang, { style: 'percent', maximumFractionDigits: 1, signDisplay: 'exceptZero' }).format(ratio);
}

/** "▲ 12% vs previous period" (rates: "▲ 1.2 pts"), coloured by whether up is good. */
function DeltaHint({
  current,
  previous,
  pick,
  upIsGood,
  rate,
  t,
  lang,
}: {
  current: number;
  /** The previous period's totals (undefined while loading or out of the API's reach). */
  previous?: Schemas['SummaryView'];
  pick: (s: Schemas['SummaryView']) => number;
  upIsGood: boolean;
  /** A ratio (success rate): compare in percentage points. */
  rate?: boolean;
  t: T;
  lang: string;
}) {
  if (!previous) return null;
  const before = pick(previous);
  const d = rate ? current - before : delta(current, before);
  if (d === null) return null;
  const threshold = rate ? 0.0005 : 0.005;
  const tone = Math.abs(d) < threshold ? 'flat' : (d > 0) === upIsGood ? 'good' : 'bad';
  const arrow = d > threshold ? '▲' : d < -threshold ? '▼' : '•';
  const text = rate
    ? t('vs_previous_pts', {
        delta: new Intl.NumberFormat(lang, { maximumFractionDigits: 1, signDisplay: 'exceptZero' }).format(d * 100),
      })
    : t('vs_previous', { delta: signedPercent(d, lang) });
  return (
    <span className={`delta ${tone}`}>
      <span aria-hidden="true">{arrow} </span>
      {text}
    </span>
  );
}

export function SummaryCards({
  summary,
  previous,
  reported,
  loading,
  t,
  lang,
}: {
  summary?: Schemas['SummaryView'];
  previous?: Schemas['SummaryView'];
  reported: number;
  loading: boolean;
  t: T;
  lang: string;
}) {
  if (loading || !summary) return <Loading />;
  const s = summary;
  // Compared only when the previous period had calls; otherwise the calls card says so once.
  const comparable = previous && previous.calls > 0 ? previous : undefined;
  const hint = (pick: (x: Schemas['SummaryView']) => number, upIsGood: boolean, rate = false) => (
    <DeltaHint current={pick(s)} previous={comparable} pick={pick} upIsGood={upIsGood} rate={rate} t={t} lang={lang} />
  );
  return (
    <div className="grid cards" role="group" aria-label={t('totals')}>
      <StatCard
        label={t('calls')}
        value={<Num value={s.calls} />}
        hint={previous && !comparable ? <span className="muted">{t('no_previous')}</span> : hint((x) => x.calls, true)}
      />
      <StatCard label={t('success_rate')} value={percent(s.success_rate)} hint={hint((x) => x.success_rate, true, true)} />
      <StatCard
        label={t('errors')}
        value={<Num value={s.errors} />}
        hint={comparable ? hint((x) => x.errors, false) : t('errors_hint')}
      />
      <StatCard label={t('avg_latency')} value={millis(s.avg_latency_ms)} hint={hint((x) => x.avg_latency_ms, false)} />
      <StatCard
        label={t('percentiles')}
        value={
          <span className="percentiles">
            {millis(s.p50_latency_ms)} <span className="muted">/</span> {millis(s.p95_latency_ms)} <span className="muted">/</span>{' '}
            {millis(s.p999_latency_ms)}
          </span>
        }
      />
      <StatCard label={t('prompt_tokens')} value={<Num value={s.prompt_tokens} />} />
      <StatCard label={t('completion_tokens')} value={<Num value={s.completion_tokens} />} />
      <StatCard
        label={t('total_tokens')}
        value={<Num value={s.total_tokens} />}
        hint={s.estimated_calls > 0 ? t('estimated_hint', { count: s.estimated_calls }) : hint((x) => x.total_tokens, true)}
      />
      <StatCard label={t('cached_tokens')} value={<Num value={s.cached_tokens} />} />
      <StatCard label={t('reasoning_tokens')} value={<Num value={s.reasoning_tokens} />} />
      <StatCard label={t('cost')} value={<Cost usd={s.cost_usd} unpriced={s.unpriced_calls} />} hint={hint((x) => x.cost_usd, true)} />
      {reported > 0 && (
        <StatCard
          label={
            <>
              {t('reported_tokens')} <span className="badge info">{t('reported')}</span>
            </>
          }
          value={<Num value={reported} />}
          hint={t('reported_hint')}
        />
      )}
    </div>
  );
}
