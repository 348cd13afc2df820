// Call logs: every call, newest first, over keyset (cursor) pages. Filters live in the URL so a
// view can be shared; the table is windowed so that scrolling through many thousands of loaded
// rows stays smooth, and only the pages the reader scrolls to are ever fetched.
import { useCallback, useEffect, useMemo, useState } from 'react';
import { useSearchParams } from 'react-router';
import { keepPreviousData, useInfiniteQuery, useQuery } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { client, downloadUrl, unwrap } from '../../api/client';
import { REFERENCE_STALE_MS, useKeys, useRoutes, useTeams } from '../../api/queries';
import { Empty, ErrorAlert, ErrorState, Loading, PageHeader } from '../../components/ui';
import { integer } from '../../format';
import { positiveInt } from '../../params';
import { LogDrawer } from './LogDrawer';
import { LogFiltersBar } from './LogFiltersBar';
import { LogTable } from './LogTable';
import {
  apiQuery,
  AUTO_LOAD_LIMIT,
  badRange,
  DEFAULT_RANGE,
  filtersFromParams,
  filtersToParams,
  type LogFilters,
  timeWindow,
} from './filters';
import { ns } from './messages';

export default function LogsPage() {
  const { t } = useTranslation([ns, 'common']);
  const [params, setParams] = useSearchParams();
  const filters = useMemo(() => filtersFromParams(params), [params]);
  const callId = positiveInt(params.get('call'));
  // "Now" for the preset ranges: fixed while the reader pages through a result, taken afresh when
  // the filters change or on refresh (so that a new first page is read, not every loaded page).
  const [tick, setTick] = useState(0);
  const refresh = useCallback(() => setTick((n) => n + 1), []);
  const filterKey = filtersToParams(filters).toString();
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const anchor = useMemo(() => Date.now(), [filterKey, tick]);
  const [auto, setAuto] = useState(false);

  const update = useCallback(
    (change: Partial<LogFilters>) => {
      setParams((prev) => filtersToParams({ ...filtersFromParams(prev), ...change }, prev), { replace: true });
    },
    [setParams],
  );
  const openCall = useCallback(
    (id: number | null) => {
      setParams(
        (prev) => {
          const p = new URLSearchParams(prev);
          if (id === null) p.delete('call');
          else p.set('call', String(id));
          return p;
        },
        { replace: id === null },
      );
    },
    [setParams],
  );

  const invalid = badRange(filters);
  const query = useMemo(() => apiQuery(filters, anchor), [filters, anchor]);
  const logs = useInfiniteQuery({
    queryKey: ['logs', query, anchor],
    queryFn: ({ pageParam }) =>
      unwrap(client.GET('/api/v1/logs', { params: { query: pageParam ? { ...query, cursor: pageParam } : query } })),
    initialPageParam: '',
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    placeholderData: keepPreviousData,
    enabled: !invalid,
    staleTime: 30_000,
  });

  const keys = useKeys(undefined, { staleTime: REFERENCE_STALE_MS });
  const teams = useTeams({ staleTime: REFERENCE_STALE_MS });
  const routes = useRoutes({ staleTime: REFERENCE_STALE_MS });
  const models = useQuery({
    queryKey: ['logs-models'],
    queryFn: () =>
      unwrap(client.GET('/api/v1/usage/top', { params: { query: { by: 'model', range: '30d', limit: 100 } } })),
    staleTime: 5 * 60_000,
  });

  const keyNames = useMemo(() => new Map((keys.data ?? []).map((k) => [k.id, k.name])), [keys.data]);
  const teamNames = useMemo(() => new Map((teams.data ?? []).map((x) => [x.id, x.name])), [teams.data]);
  const routeNames = useMemo(() => new Map((routes.data ?? []).map((r) => [r.id, r.name])), [routes.data]);
  const rows = useMemo(() => logs.data?.pages.flatMap((p) => p.items) ?? [], [logs.data]);
  const pages = logs.data?.pages.length ?? 0;

  // Auto-refresh re-reads the newest page, but only while the reader is at the top of the log.
  const [scrolled, setScrolled] = useState(false);
  useEffect(() => {
    if (!auto) return;
    const timer = setInterval(() => {
      if (pages <= 1 && !scrolled && !callId && document.visibilityState === 'visible') refresh();
    }, 10_000);
    return () => clearInterval(timer);
  }, [auto, pages, scrolled, callId, refresh]);

  const exportHref = downloadUrl('/api/v1/usage/export', {
    dataset: 'events',
    format: 'csv',
    from: timeWindow(filters, anchor).from ?? 0,
    to: timeWindow(filters, anchor).to,
    team_id: filters.team_id,
    key_id: filters.key_id,
    route_id: filters.route_id,
    model: filters.model,
    status: filters.status,
  });

  const hasFilters =
    filters.q !== '' ||
    filters.range !== DEFAULT_RANGE ||
    !!(filters.team_id || filters.key_id || filters.route_id || filters.model || filters.status);

  return (
    <div className="logs-page">
      <PageHeader title={t('title')} subtitle={t('subtitle')}>
        <label className="row logs-auto">
          <input type="checkbox" checked={auto} onChange={(e) => setAuto(e.target.checked)} />
          {t('auto_refresh')}
        </label>
        <button type="button" onClick={refresh} disabled={logs.isFetching && !logs.isFetchingNextPage}>
          {t('common:refresh')}
        </button>
        <a
          className="button"
          href={exportHref}
          download
          title={filters.q ? t('export_no_search') : undefined}
        >
          {t('export')}
        </a>
      </PageHeader>

      <LogFiltersBar
        filters={filters}
        update={update}
        teams={teams.data ?? []}
        keys={keys.data ?? []}
        routes={routes.data ?? []}
        models={(models.data ?? []).map((m) => m.name).filter((m) => m && m !== '(none)')}
        onReset={
          hasFilters
            ? () => {
                setParams(filtersToParams({ q: '', range: DEFAULT_RANGE }, params), { replace: true });
              }
            : undefined
        }
      />

      {invalid ? (
        <div className="alert error" role="alert">
          {t('bad_range')}
        </div>
      ) : logs.isPending ? (
        <Loading />
      ) : logs.isError && rows.length === 0 ? (
        <ErrorState error={logs.error} onRetry={() => void logs.refetch()} />
      ) : rows.length === 0 ? (
        <Empty>
          <p>{t('empty')}</p>
          {hasFilters && <p className="muted">{t('empty_hint')}</p>}
        </Empty>
      ) : (
        <>
          <div className="row logs-summary muted" aria-live="polite">
            <span>
              {logs.hasNextPage ? t('loaded', { n: integer(rows.length) }) : t('loaded_all', { n: integer(rows.length) })}
              {logs.hasNextPage && ` · ${t('more_available')}`}
            </span>
            {logs.isPlaceholderData && <span className="badge info">{t('updating')}</span>}
            {auto && pages > 1 && <span>{t('auto_paused')}</span>}
          </div>
          <LogTable
            rows={rows}
            keyNames={keyNames}
            routeNames={routeNames}
            teamNames={teamNames}
            onOpen={(id) => openCall(id)}
            onScrolled={setScrolled}
            canAutoLoad={!!logs.hasNextPage && !logs.isFetchingNextPage && !logs.isError && rows.length < AUTO_LOAD_LIMIT}
            onNearEnd={() => void logs.fetchNextPage()}
            resetKey={JSON.stringify(query)}
          />
          <div className="logs-foot">
            {logs.isFetchNextPageError && <ErrorAlert error={logs.error} />}
            {logs.hasNextPage ? (
              <>
                {rows.length >= AUTO_LOAD_LIMIT && <p className="muted">{t('cap_note', { n: integer(AUTO_LOAD_LIMIT) })}</p>}
                <button type="button" onClick={() => void logs.fetchNextPage()} disabled={logs.isFetchingNextPage}>
                  {logs.isFetchingNextPage ? t('loading_more') : t('load_more')}
                </button>
              </>
            ) : (
              <p className="muted">{t('end')}</p>
            )}
          </div>
        </>
      )}

      <LogDrawer
        id={callId ?? null}
        onClose={() => openCall(null)}
        keyNames={keyNames}
        teamNames={teamNames}
        routeNames={routeNames}
        onFilter={(change) => {
          setParams((prev) => {
            const p = filtersToParams({ ...filtersFromParams(prev), ...change }, prev);
            p.delete('call');
            return p;
          });
        }}
      />
    </div>
  );
}
