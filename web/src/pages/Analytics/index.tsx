// Usage analytics: totals, trends, top-N, distributions, per-model tokens, quotas and exports.
// Every figure comes from the hourly roll-ups (`/api/v1/usage/summary|series|top`), so the page
// stays fast however many raw events there are; the queries run in parallel and the browser only
// maps their (small) answers to charts. The filters live in the URL so that every view is linkable.
import { useEffect, useMemo, useRef, useState } from 'react';
import { useSearchParams } from 'react-router';
import { useQueryClient } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import {
  REFERENCE_STALE_MS,
  useKeys,
  useQuotas,
  useRoutes,
  useTeams,
  useUsageSeries,
  useUsageSummary,
  useUsageTop,
  type TopQuery,
  type UsageQuery,
} from '../../api/queries';
import type { Grouping } from '../../api/vocabulary';
import { usePermissions } from '../../auth';
import { Distribution, TrendChart } from '../../components/charts';
import { ErrorState, PageHeader, QueryState } from '../../components/ui';
import { date, millis } from '../../format';
import { ExportMenu } from './ExportMenu';
import { FilterBar } from './FilterBar';
import { LatencyCard } from './LatencyCard';
import { ModelsTable } from './ModelsTable';
import { QuotaCard } from './QuotaCard';
import { SummaryCards } from './SummaryCards';
import { TopCard } from './TopCard';
import { foldOthers, seriesToChart } from './chartData';
import {
  type AnalyticsFilters,
  bucketOf,
  filtersToParams,
  last24hQuery,
  type Order,
  parseFilters,
  previousQuery,
  rangeError,
  seriesQuery,
  usageQuery,
  windowQuery,
} from './filters';
import { ns } from './messages';
import type { Item } from './types';

export default function Analytics() {
  const { t, i18n } = useTranslation([ns, 'common']);
  const lang = i18n.language;
  const can = usePermissions();
  const queryClient = useQueryClient();
  const [params, setParams] = useSearchParams();
  const search = params.toString();
  const filters = useMemo(() => parseFilters(new URLSearchParams(search)), [search]);
  const invalid = rangeError(filters);
  const ok = invalid === null;

  // The clock the presets' derived windows (previous period, counters, exports) use.
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => setNow(Date.now()), [search]);

  // The URL the last change asked for: changes made before the (transitioned) navigation has
  // rendered build on it rather than on the previous render's filters.
  const latest = useRef(search);
  const seen = useRef(search);
  if (seen.current !== search) {
    seen.current = search;
    latest.current = search;
  }
  const navigate = (next: URLSearchParams) => {
    latest.current = next.toString();
    setParams(next);
  };
  const update = (patch: Partial<AnalyticsFilters>) => {
    navigate(filtersToParams({ ...parseFilters(new URLSearchParams(latest.current)), ...patch }));
  };

  const noDimensions =
    !filters.team_id && !filters.key_id && !filters.route_id && !filters.model && !filters.status_class;

  // Reference lists for the filters (small, cached for a while).
  const teams = useTeams({ staleTime: REFERENCE_STALE_MS });
  const routes = useRoutes({ staleTime: REFERENCE_STALE_MS });
  const keys = useKeys({ team_id: filters.team_id }, { staleTime: REFERENCE_STALE_MS });

  // Analytics: every query runs at once.
  const uq = ok ? usageQuery(filters) : null;
  const sq = ok ? seriesQuery(filters) : null;
  const dq = ok ? last24hQuery(filters) : null;
  const pq = ok ? previousQuery(filters, now) : null;
  const top = (by: Grouping, order: Order, limit: number, base: UsageQuery | null = uq): TopQuery | null =>
    base ? { ...base, by, order, limit } : null;
  const keyQ = top('key', filters.order, 10);
  const routeQ = top('route', filters.order, 100);
  const modelQ = top('model', 'tokens', 100);
  // Teams are worth ranking only when more than one is in view.
  const teamQ = filters.team_id || (!can.isAdmin && (teams.data?.length ?? 0) <= 1) ? null : top('team', filters.order, 10);
  const statusQ = top('status_class', 'calls', 10);
  // Models to offer in the filter: the range's models within the team only.
  const modelOptionsQ = ok
    ? noDimensions || (filters.team_id && !filters.key_id && !filters.route_id && !filters.model && !filters.status_class)
      ? modelQ
      : top('model', 'tokens', 100, { ...windowQuery(filters), ...(filters.team_id ? { team_id: filters.team_id } : {}) })
    : null;

  const summary = useUsageSummary(uq);
  const previous = useUsageSummary(pq);
  const series = useUsageSeries(sq);
  const day = useUsageSeries(dq);
  const topKeys = useUsageTop(keyQ);
  const topRoutes = useUsageTop(routeQ);
  const models = useUsageTop(modelQ);
  const topTeams = useUsageTop(teamQ);
  const statuses = useUsageTop(statusQ);
  const modelOptions = useUsageTop(modelOptionsQ);
  const quotas = useQuotas();
  const reportedTotal = summary.data?.reported_tokens ?? 0;
  const bucket = bucketOf(filters);
  const rangeChart = useMemo(() => (series.data ? seriesToChart(series.data, bucket, lang) : null), [series.data, bucket, lang]);
  const dayChart = useMemo(() => (day.data ? seriesToChart(day.data, 'hour', lang) : null), [day.data, lang]);

  const teamName = (id: number) => teams.data?.find((x) => x.id === id)?.name ?? t('team_n', { id });
  const metricLabel = filters.order === 'tokens' ? t('metric_tokens') : t('metric_calls');
  const metricOf = (i: Item) => (filters.order === 'tokens' ? i.total_tokens : i.calls);

  return (
    <div className="stack insights analytics">
      <PageHeader title={t('title')} subtitle={t('subtitle')}>
        <button
          type="button"
          onClick={() => {
            setNow(Date.now());
            void queryClient.invalidateQueries({ queryKey: ['usage'] });
            void queryClient.invalidateQueries({ queryKey: ['quotas'] });
          }}
        >
          {t('refresh')}
        </button>
        <ExportMenu filters={filters} disabled={!ok} t={t} />
      </PageHeader>

      <FilterBar
        filters={filters}
        update={update}
        onClear={() => {
          const f = parseFilters(new URLSearchParams(latest.current));
          navigate(filtersToParams({ range: f.range, from: f.from, to: f.to, order: f.order }));
        }}
        teams={teams.data ?? []}
        routes={routes.data ?? []}
        keys={keys.data ?? []}
        models={(modelOptions.data ?? []).map((m) => m.name).filter((m) => m !== '(none)')}
        invalid={invalid}
        t={t}
        now={now}
      />

      {!ok ? null : summary.isError ? (
        <ErrorState error={summary.error} onRetry={() => void summary.refetch()} />
      ) : (
        <>
          <SummaryCards
            summary={summary.data}
            previous={previous.data}
            reported={reportedTotal}
            loading={summary.isPending}
            t={t}
            lang={lang}
          />

          <div className="grid two">
            <section className="card" aria-labelledby="an-24h">
              <h2 id="an-24h">{t('trend_24h')}</h2>
              <p className="muted small-text">{t('trend_24h_desc')}</p>
              <QueryState query={day} isEmpty={() => !dayChart?.hasCalls} empty={t('no_calls')}>
                {() =>
                  dayChart && (
                    <TrendChart
                      label={t('trend_24h_chart')}
                      labels={dayChart.labels}
                      series={[
                        { label: t('calls'), data: dayChart.calls, kind: 'bar' },
                        { label: t('avg_latency_series'), data: dayChart.avgLatency, axis: 'right' },
                        { label: t('p95_latency_series'), data: dayChart.p95Latency, axis: 'right' },
                      ]}
                      formatRight={millis}
                    />
                  )
                }
              </QueryState>
            </section>
            <section className="card" aria-labelledby="an-trend">
              <h2 id="an-trend">
                {t('trend_range')} ·{' '}
                {filters.range === 'custom' ? `${date(filters.from)} – ${date(filters.to)}` : t(`common:range_${filters.range}`)}
              </h2>
              <p className="muted small-text">{bucket === 'hour' ? t('trend_hourly') : t('trend_daily')}</p>
              <QueryState query={series} isEmpty={() => !rangeChart?.hasCalls && !rangeChart?.reported} empty={t('no_calls')}>
                {() =>
                  rangeChart && (
                    <TrendChart
                      label={t('trend_chart')}
                      labels={rangeChart.labels}
                      series={[
                        { label: t('calls'), data: rangeChart.calls, kind: 'bar' },
                        { label: t('total_tokens'), data: rangeChart.tokens, axis: 'right' },
                        ...(rangeChart.reported
                          ? [{ label: t('reported_series'), data: rangeChart.reported, axis: 'right' as const }]
                          : []),
                      ]}
                    />
                  )
                }
              </QueryState>
            </section>
          </div>

          <div className="grid two">
            <TopCard
              id="an-top-keys"
              title={t('top_keys')}
              query={topKeys}
              metricLabel={metricLabel}
              metricOf={metricOf}
              onPick={(i) => i.id && update({ key_id: i.id })}
              t={t}
            />
            <TopCard
              id="an-top-routes"
              title={t('top_routes')}
              query={topRoutes}
              metricLabel={metricLabel}
              metricOf={metricOf}
              onPick={(i) => i.id && update({ route_id: i.id })}
              t={t}
            />
            <TopCard
              id="an-top-models"
              title={t('top_models')}
              query={models}
              metricLabel={metricLabel}
              metricOf={metricOf}
              onPick={(i) => i.name !== '(none)' && update({ model: i.name })}
              sortBy={filters.order}
              t={t}
            />
            {teamQ && (
              <TopCard
                id="an-top-teams"
                title={t('top_teams')}
                query={topTeams}
                metricLabel={metricLabel}
                metricOf={metricOf}
                onPick={(i) => i.id && update({ team_id: i.id, key_id: undefined })}
                t={t}
              />
            )}
          </div>

          <div className="grid three">
            <section className="card" aria-labelledby="an-routes-dist">
              <h2 id="an-routes-dist">{t('route_distribution')}</h2>
              <p className="muted small-text">{t('route_distribution_desc', { metric: metricLabel })}</p>
              <QueryState query={topRoutes} isEmpty={(d) => d.every((i) => metricOf(i) === 0)} empty={t('no_calls')}>
                {(d) => (
                  <Distribution
                    label={t('route_distribution')}
                    items={foldOthers(
                      d.map((i) => ({ label: i.name, value: metricOf(i) })),
                      5,
                      t('others'),
                    )}
                  />
                )}
              </QueryState>
            </section>
            <section className="card" aria-labelledby="an-status-dist">
              <h2 id="an-status-dist">{t('status_distribution')}</h2>
              <p className="muted small-text">{t('status_distribution_desc')}</p>
              <QueryState query={statuses} isEmpty={(d) => d.every((i) => i.calls === 0)} empty={t('no_calls')}>
                {(d) => (
                  <Distribution
                    label={t('status_distribution')}
                    items={[...d].sort((a, b) => (a.id ?? 0) - (b.id ?? 0)).map((i) => ({ label: i.name, value: i.calls }))}
                  />
                )}
              </QueryState>
            </section>
            <LatencyCard summary={summary.data} t={t} />
          </div>

          <div className="grid an-split">
            <section className="card" aria-labelledby="an-models">
              <h2 id="an-models">{t('models_title')}</h2>
              <QueryState query={models} empty={t('no_calls')}>
                {(d) => <ModelsTable items={d} total={summary.data} t={t} />}
              </QueryState>
            </section>
            <QuotaCard
              quotas={quotas}
              teamId={filters.team_id}
              teamName={teamName}
              isAdmin={can.isAdmin}
              t={t}
            />
          </div>
        </>
      )}
    </div>
  );
}
