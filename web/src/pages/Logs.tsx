// Call logs: every call, newest first, over keyset (cursor) pages. Filters live in the URL so a
// view can be shared; the table is windowed so that scrolling through many thousands of loaded
// rows stays smooth, and only the pages the reader scrolls to are ever fetched.
import { useCallback, useEffect, useId, useMemo, useRef, useState, type KeyboardEvent, type ReactNode } from 'react';
import { useSearchParams } from 'react-router';
import { keepPreviousData, useInfiniteQuery, useQuery } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { client, downloadUrl, unwrap, type Schemas } from '../api/client';
import { REFERENCE_STALE_MS, useKeys, useRoutes, useTeams } from '../api/queries';
import type { operations } from '../api/schema';
import i18n, { defineMessages } from '../i18n';
import {
  CopyButton,
  Drawer,
  Empty,
  ErrorAlert,
  ErrorState,
  Loading,
  PageHeader,
  StatusBadge,
  TeamOptions,
  NamedOptions,
} from '../components/ui';
import { compact, dateTime, integer, millis, relative, usd } from '../format';
import { fromLocalInput, toLocalInput } from '../localTime';
import { positiveInt } from '../params';

const ns = defineMessages(
  'logs',
  {
    title: 'Call logs',
    subtitle: 'Every call through the gateway, newest first. Click a row (or press Enter) for its details.',
    search: 'Search',
    search_placeholder: 'Path, error or user agent',
    range: 'Time range',
    range_1h: 'Last hour',
    range_24h: 'Last 24 hours',
    range_7d: 'Last 7 days',
    range_30d: 'Last 30 days',
    range_all: 'All retained',
    range_custom: 'Custom…',
    from: 'From',
    to: 'To',
    team: 'Team',
    key: 'Key',
    route: 'Route',
    model: 'Model',
    status: 'Status',
    any: 'Any',
    all_keys: 'All keys',
    all_routes: 'All routes',
    all_models: 'All models',
    any_status: 'Any status',
    status_classes: 'Classes',
    status_codes: 'Codes',
    class_2xx: '2xx success',
    class_3xx: '3xx redirect',
    class_4xx: '4xx client error',
    class_5xx: '5xx server error',
    reset: 'Reset filters',
    auto_refresh: 'Auto-refresh',
    auto_paused: 'Auto-refresh pauses while you scroll through older calls.',
    col_time: 'Time',
    col_key: 'Key',
    col_route: 'Route',
    col_request: 'Request',
    col_model: 'Model',
    col_status: 'Status',
    col_latency: 'Latency',
    col_tokens: 'Tokens',
    col_cost: 'Cost',
    no_key: 'no key',
    deleted_key: 'key #{{id}}',
    loaded: '{{n}} calls loaded',
    loaded_all: '{{n}} calls',
    more_available: 'more available',
    load_more: 'Load more',
    loading_more: 'Loading…',
    end: 'End of the log for these filters.',
    cap_note: 'Automatic loading stops at {{n}} rows; narrow the filters or the time range to reach older calls faster.',
    empty: 'No calls match these filters.',
    empty_hint: 'Widen the time range or clear the filters.',
    row_hint: 'Use the arrow keys to move between calls and Enter to open one.',
    updating: 'Updating…',
    export: 'Download CSV',
    export_no_search: 'The download applies every filter except the search text.',
    bad_range: 'The start must be before the end.',
    details: 'Call details',
    d_id: 'Row id',
    d_request_id: 'Request id',
    d_time: 'Time',
    d_source: 'Source',
    d_key: 'Key',
    d_team: 'Team',
    d_route: 'Route',
    d_method: 'Method',
    d_path: 'Path',
    d_status: 'Status',
    d_latency: 'Total latency',
    d_upstream: 'Upstream latency',
    d_overhead: 'Gateway overhead',
    d_model: 'Model',
    d_prompt: 'Prompt tokens',
    d_completion: 'Completion tokens',
    d_total: 'Total tokens',
    d_cached: 'Cached prompt tokens',
    d_reasoning: 'Reasoning tokens',
    d_estimated: 'Token counts',
    estimated: 'Estimated (counted from the streamed text)',
    reported: 'Reported by the upstream',
    d_cost: 'Cost',
    d_error: 'Error',
    d_user_agent: 'User agent',
    d_ip: 'Client IP',
    section_request: 'Request',
    section_timing: 'Timing',
    section_tokens: 'Tokens and cost',
    section_client: 'Client',
    only_this_key: 'Only this key',
    only_this_route: 'Only this route',
    only_this_status: 'Only this status',
    none: '—',
  },
  {
    'zh-CN': {
      title: '调用日志',
      subtitle: '经过网关的每一次调用，最新的在前。点击某一行（或按 Enter）查看详情。',
      search: '搜索',
      search_placeholder: '路径、错误或 User-Agent',
      range: '时间范围',
      range_1h: '最近 1 小时',
      range_24h: '最近 24 小时',
      range_7d: '最近 7 天',
      range_30d: '最近 30 天',
      range_all: '全部保留数据',
      range_custom: '自定义…',
      from: '开始',
      to: '结束',
      team: '团队',
      key: '密钥',
      route: '路由',
      model: '模型',
      status: '状态',
      any: '任意',
      all_keys: '全部密钥',
      all_routes: '全部路由',
      all_models: '全部模型',
      any_status: '任意状态',
      status_classes: '类别',
      status_codes: '状态码',
      class_2xx: '2xx 成功',
      class_3xx: '3xx 重定向',
      class_4xx: '4xx 客户端错误',
      class_5xx: '5xx 服务端错误',
      reset: '重置筛选',
      auto_refresh: '自动刷新',
      auto_paused: '浏览较早的调用时，自动刷新会暂停。',
      col_time: '时间',
      col_key: '密钥',
      col_route: '路由',
      col_request: '请求',
      col_model: '模型',
      col_status: '状态',
      col_latency: '延迟',
      col_tokens: 'Token',
      col_cost: '费用',
      no_key: '无密钥',
      deleted_key: '密钥 #{{id}}',
      loaded: '已加载 {{n}} 条调用',
      loaded_all: '共 {{n}} 条调用',
      more_available: '还有更多',
      load_more: '加载更多',
      loading_more: '加载中…',
      end: '已到达当前筛选条件下日志的末尾。',
      cap_note: '自动加载在 {{n}} 行时停止；缩小筛选条件或时间范围可更快找到较早的调用。',
      empty: '没有符合筛选条件的调用。',
      empty_hint: '请扩大时间范围或清除筛选条件。',
      row_hint: '使用方向键在调用之间移动，按 Enter 打开详情。',
      updating: '更新中…',
      export: '下载 CSV',
      export_no_search: '下载会应用除搜索文本之外的全部筛选条件。',
      bad_range: '开始时间必须早于结束时间。',
      details: '调用详情',
      d_id: '行 ID',
      d_request_id: '请求 ID',
      d_time: '时间',
      d_source: '来源',
      d_key: '密钥',
      d_team: '团队',
      d_route: '路由',
      d_method: '方法',
      d_path: '路径',
      d_status: '状态',
      d_latency: '总延迟',
      d_upstream: '上游延迟',
      d_overhead: '网关开销',
      d_model: '模型',
      d_prompt: '输入 Token',
      d_completion: '输出 Token',
      d_total: '总 Token',
      d_cached: '缓存输入 Token',
      d_reasoning: '推理 Token',
      d_estimated: 'Token 计数',
      estimated: '估算（根据流式文本计数）',
      reported: '由上游报告',
      d_cost: '费用',
      d_error: '错误',
      d_user_agent: 'User-Agent',
      d_ip: '客户端 IP',
      section_request: '请求',
      section_timing: '耗时',
      section_tokens: 'Token 与费用',
      section_client: '客户端',
      only_this_key: '只看此密钥',
      only_this_route: '只看此路由',
      only_this_status: '只看此状态',
      none: '—',
    },
    'zh-TW': {
      title: '呼叫日誌',
      subtitle: '經過閘道的每一次呼叫，最新的在前。點選某一列（或按 Enter）檢視詳細資料。',
      search: '搜尋',
      search_placeholder: '路徑、錯誤或 User-Agent',
      range: '時間範圍',
      range_1h: '最近 1 小時',
      range_24h: '最近 24 小時',
      range_7d: '最近 7 天',
      range_30d: '最近 30 天',
      range_all: '全部保留資料',
      range_custom: '自訂…',
      from: '開始',
      to: '結束',
      team: '團隊',
      key: '金鑰',
      route: '路由',
      model: '模型',
      status: '狀態',
      any: '任意',
      all_keys: '全部金鑰',
      all_routes: '全部路由',
      all_models: '全部模型',
      any_status: '任意狀態',
      status_classes: '類別',
      status_codes: '狀態碼',
      class_2xx: '2xx 成功',
      class_3xx: '3xx 重新導向',
      class_4xx: '4xx 用戶端錯誤',
      class_5xx: '5xx 伺服器錯誤',
      reset: '重設篩選',
      auto_refresh: '自動重新整理',
      auto_paused: '瀏覽較早的呼叫時，自動重新整理會暫停。',
      col_time: '時間',
      col_key: '金鑰',
      col_route: '路由',
      col_request: '請求',
      col_model: '模型',
      col_status: '狀態',
      col_latency: '延遲',
      col_tokens: 'Token',
      col_cost: '費用',
      no_key: '無金鑰',
      deleted_key: '金鑰 #{{id}}',
      loaded: '已載入 {{n}} 筆呼叫',
      loaded_all: '共 {{n}} 筆呼叫',
      more_available: '還有更多',
      load_more: '載入更多',
      loading_more: '載入中…',
      end: '已到達目前篩選條件下日誌的結尾。',
      cap_note: '自動載入在 {{n}} 列時停止；縮小篩選條件或時間範圍可更快找到較早的呼叫。',
      empty: '沒有符合篩選條件的呼叫。',
      empty_hint: '請擴大時間範圍或清除篩選條件。',
      row_hint: '使用方向鍵在呼叫之間移動，按 Enter 開啟詳細資料。',
      updating: '更新中…',
      export: '下載 CSV',
      export_no_search: '下載會套用除搜尋文字以外的所有篩選條件。',
      bad_range: '開始時間必須早於結束時間。',
      details: '呼叫詳細資料',
      d_id: '列 ID',
      d_request_id: '請求 ID',
      d_time: '時間',
      d_source: '來源',
      d_key: '金鑰',
      d_team: '團隊',
      d_route: '路由',
      d_method: '方法',
      d_path: '路徑',
      d_status: '狀態',
      d_latency: '總延遲',
      d_upstream: '上游延遲',
      d_overhead: '閘道額外耗時',
      d_model: '模型',
      d_prompt: '輸入 Token',
      d_completion: '輸出 Token',
      d_total: '總 Token',
      d_cached: '快取輸入 Token',
      d_reasoning: '推理 Token',
      d_estimated: 'Token 計數',
      estimated: '估算（依串流文字計數）',
      reported: '由上游回報',
      d_cost: '費用',
      d_error: '錯誤',
      d_user_agent: 'User-Agent',
      d_ip: '用戶端 IP',
      section_request: '請求',
      section_timing: '耗時',
      section_tokens: 'Token 與費用',
      section_client: '用戶端',
      only_this_key: '只看此金鑰',
      only_this_route: '只看此路由',
      only_this_status: '只看此狀態',
      none: '—',
    },
  },
);

export type LogEntry = Schemas['LogEntry'];
export type LogApiQuery = NonNullable<operations['logs']['parameters']['query']>;

// ---------------------------------------------------------------------------------------------
// Filters ⇄ URL ⇄ API query (pure, tested)

export const RANGES = ['1h', '24h', '7d', '30d', 'all', 'custom'] as const;
export type RangePreset = (typeof RANGES)[number];
const RANGE_MS: Record<Exclude<RangePreset, 'all' | 'custom'>, number> = {
  '1h': 3_600_000,
  '24h': 86_400_000,
  '7d': 7 * 86_400_000,
  '30d': 30 * 86_400_000,
};
export const DEFAULT_RANGE: RangePreset = '24h';
/** Rows per request. */
export const PAGE_SIZE = 100;
/** Rows after which scrolling stops fetching by itself (the button still loads more). */
export const AUTO_LOAD_LIMIT = 5_000;

export interface LogFilters {
  q: string;
  range: RangePreset;
  /** Custom range start / end, epoch ms. */
  from?: number;
  to?: number;
  team_id?: number;
  key_id?: number;
  route_id?: number;
  model?: string;
  /** An exact status (`429`) or a class (`4xx`). */
  status?: string;
}

const STATUS_RE = /^([2-5]xx|[1-5]\d\d)$/;

function epochParam(text: string | null): number | undefined {
  if (!text || !/^\d{1,15}$/.test(text)) return undefined;
  return Number(text);
}

/** Reads the filters from the page's search params; anything malformed is ignored. */
export function filtersFromParams(params: URLSearchParams): LogFilters {
  const rangeText = params.get('range');
  let range: RangePreset = (RANGES as readonly string[]).includes(rangeText ?? '')
    ? (rangeText as RangePreset)
    : DEFAULT_RANGE;
  const from = epochParam(params.get('from'));
  const to = epochParam(params.get('to'));
  // A link with only from/to is a custom range.
  if (!rangeText && (from !== undefined || to !== undefined)) range = 'custom';
  const status = params.get('status')?.toLowerCase() ?? '';
  const model = params.get('model') ?? '';
  return {
    q: (params.get('q') ?? '').slice(0, 200),
    range,
    ...(range === 'custom' && from !== undefined ? { from } : {}),
    ...(range === 'custom' && to !== undefined ? { to } : {}),
    ...(positiveInt(params.get('team')) ? { team_id: positiveInt(params.get('team')) } : {}),
    ...(positiveInt(params.get('key')) ? { key_id: positiveInt(params.get('key')) } : {}),
    ...(positiveInt(params.get('route')) ? { route_id: positiveInt(params.get('route')) } : {}),
    ...(model ? { model: model.slice(0, 200) } : {}),
    ...(STATUS_RE.test(status) ? { status } : {}),
  };
}

/** Writes the filters as search params (defaults left out), keeping unrelated params such as `call`. */
export function filtersToParams(f: LogFilters, base?: URLSearchParams): URLSearchParams {
  const p = new URLSearchParams(base);
  for (const k of ['q', 'range', 'from', 'to', 'team', 'key', 'route', 'model', 'status']) p.delete(k);
  if (f.q.trim()) p.set('q', f.q.trim());
  if (f.range !== DEFAULT_RANGE) p.set('range', f.range);
  if (f.range === 'custom') {
    if (f.from !== undefined) p.set('from', String(f.from));
    if (f.to !== undefined) p.set('to', String(f.to));
  }
  if (f.team_id) p.set('team', String(f.team_id));
  if (f.key_id) p.set('key', String(f.key_id));
  if (f.route_id) p.set('route', String(f.route_id));
  if (f.model) p.set('model', f.model);
  if (f.status) p.set('status', f.status);
  return p;
}

/** The time window of the filters at `now`: preset ranges end now (open-ended). */
export function timeWindow(f: LogFilters, now: number): { from?: number; to?: number } {
  if (f.range === 'all') return {};
  if (f.range === 'custom') return { from: f.from, to: f.to };
  return { from: now - RANGE_MS[f.range] };
}

/** Whether a custom range is backwards (the API would refuse it). */
export function badRange(f: LogFilters): boolean {
  return f.range === 'custom' && f.from !== undefined && f.to !== undefined && f.from >= f.to;
}

/** The `/api/v1/logs` query for the filters at `now` (without cursor). */
export function apiQuery(f: LogFilters, now: number): LogApiQuery {
  const q: LogApiQuery = { limit: PAGE_SIZE, ...timeWindow(f, now) };
  if (q.from === undefined) delete q.from;
  if (q.to === undefined) delete q.to;
  if (f.q.trim()) q.q = f.q.trim();
  if (f.team_id) q.team_id = f.team_id;
  if (f.key_id) q.key_id = f.key_id;
  if (f.route_id) q.route_id = f.route_id;
  if (f.model) q.model = f.model;
  if (f.status) q.status = f.status;
  return q;
}

/** How strongly a row is marked: 5xx or an error message red, 4xx amber, others not at all. */
export function rowTone(entry: Pick<LogEntry, 'status' | 'error'>): 'danger' | 'warning' | null {
  if (entry.status >= 500) return 'danger';
  if (entry.status >= 400) return 'warning';
  if (entry.error) return 'danger';
  return null;
}

const COMMON_CODES = ['200', '201', '204', '400', '401', '403', '404', '413', '422', '429', '499', '500', '502', '503', '504'];

// ---------------------------------------------------------------------------------------------
// The page

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

// ---------------------------------------------------------------------------------------------
// Filters

function LogFiltersBar({
  filters,
  update,
  teams,
  keys,
  routes,
  models,
  onReset,
}: {
  filters: LogFilters;
  update: (change: Partial<LogFilters>) => void;
  teams: Schemas['TeamView'][];
  keys: Schemas['KeyView'][];
  routes: Schemas['RouteView'][];
  models: string[];
  onReset?: () => void;
}) {
  const { t } = useTranslation([ns, 'common']);
  const [text, setText] = useState(filters.q);
  const [model, setModel] = useState(filters.model ?? '');
  // Follow the URL when it changes from elsewhere (back button, "reset").
  useEffect(() => setText(filters.q), [filters.q]);
  useEffect(() => setModel(filters.model ?? ''), [filters.model]);
  // Type-ahead search: the URL follows the box after a short pause.
  useEffect(() => {
    if (text.trim() === filters.q) return;
    const timer = setTimeout(() => update({ q: text }), 350);
    return () => clearTimeout(timer);
  }, [text, filters.q, update]);

  const visibleKeys = filters.team_id ? keys.filter((k) => k.team_id === filters.team_id) : keys;
  const visibleRoutes = filters.team_id
    ? routes.filter((r) => r.team_id === null || r.team_id === undefined || r.team_id === filters.team_id)
    : routes;
  const statusKnown = !filters.status || /xx$/.test(filters.status) || COMMON_CODES.includes(filters.status);

  return (
    <form
      className="filters logs-filters"
      role="search"
      onSubmit={(e) => {
        e.preventDefault();
        update({ q: text, model: model.trim() || undefined });
      }}
    >
      <FilterField label={t('search')} className="logs-search">
        {(id) => (
          <input
            id={id}
            type="search"
            value={text}
            maxLength={200}
            placeholder={t('search_placeholder')}
            onChange={(e) => setText(e.target.value)}
          />
        )}
      </FilterField>
      <FilterField label={t('range')}>
        {(id) => (
          <select
            id={id}
            value={filters.range}
            onChange={(e) => {
              const range = e.target.value as RangePreset;
              if (range === 'custom') {
                const now = Date.now();
                update({ range, from: filters.from ?? now - RANGE_MS['24h'], to: filters.to ?? now });
              } else update({ range, from: undefined, to: undefined });
            }}
          >
            {RANGES.map((r) => (
              <option key={r} value={r}>
                {t(`range_${r}`)}
              </option>
            ))}
          </select>
        )}
      </FilterField>
      {filters.range === 'custom' && (
        <>
          <FilterField label={t('from')}>
            {(id) => (
              <input
                id={id}
                type="datetime-local"
                value={toLocalInput(filters.from)}
                aria-invalid={badRange(filters) || undefined}
                onChange={(e) => update({ from: fromLocalInput(e.target.value) })}
              />
            )}
          </FilterField>
          <FilterField label={t('to')}>
            {(id) => (
              <input
                id={id}
                type="datetime-local"
                value={toLocalInput(filters.to)}
                aria-invalid={badRange(filters) || undefined}
                onChange={(e) => update({ to: fromLocalInput(e.target.value) })}
              />
            )}
          </FilterField>
        </>
      )}
      <FilterField label={t('team')}>
        {(id) => (
          <select
            id={id}
            value={filters.team_id ?? ''}
            onChange={(e) => update({ team_id: positiveInt(e.target.value), key_id: undefined })}
          >
            <TeamOptions teams={teams} all />
          </select>
        )}
      </FilterField>
      <FilterField label={t('key')}>
        {(id) => (
          <select id={id} value={filters.key_id ?? ''} onChange={(e) => update({ key_id: positiveInt(e.target.value) })}>
            <NamedOptions
              items={visibleKeys}
              selected={filters.key_id}
              all={t('all_keys')}
              missing={(id) => t('deleted_key', { id })}
            />
          </select>
        )}
      </FilterField>
      <FilterField label={t('route')}>
        {(id) => (
          <select id={id} value={filters.route_id ?? ''} onChange={(e) => update({ route_id: positiveInt(e.target.value) })}>
            <NamedOptions items={visibleRoutes} selected={filters.route_id} all={t('all_routes')} />
          </select>
        )}
      </FilterField>
      <FilterField label={t('model')}>
        {(id) => (
          <>
            <input
              id={id}
              list="logs-models"
              value={model}
              maxLength={200}
              placeholder={t('all_models')}
              onChange={(e) => {
                setModel(e.target.value);
                // Picking a suggestion applies it at once; typed text applies on Enter or leaving the box.
                if (models.includes(e.target.value)) update({ model: e.target.value });
              }}
              onBlur={() => model.trim() !== (filters.model ?? '') && update({ model: model.trim() || undefined })}
            />
            <datalist id="logs-models">
              {models.map((m) => (
                <option key={m} value={m} />
              ))}
            </datalist>
          </>
        )}
      </FilterField>
      <FilterField label={t('status')}>
        {(id) => (
          <select id={id} value={filters.status ?? ''} onChange={(e) => update({ status: e.target.value || undefined })}>
            <option value="">{t('any_status')}</option>
            <optgroup label={t('status_classes')}>
              {(['2xx', '3xx', '4xx', '5xx'] as const).map((c) => (
                <option key={c} value={c}>
                  {t(`class_${c}`)}
                </option>
              ))}
            </optgroup>
            <optgroup label={t('status_codes')}>
              {COMMON_CODES.map((c) => (
                <option key={c} value={c}>
                  {c}
                </option>
              ))}
              {!statusKnown && <option value={filters.status}>{filters.status}</option>}
            </optgroup>
          </select>
        )}
      </FilterField>
      {onReset && (
        <button type="button" className="ghost" onClick={onReset}>
          {t('reset')}
        </button>
      )}
      <button type="submit" className="sr-only" tabIndex={-1}>
        {t('search')}
      </button>
    </form>
  );
}

/** A filter control with a separate label (so that a select's options do not become its name). */
export function FilterField({
  label,
  className,
  children,
}: {
  label: string;
  className?: string;
  children: (id: string) => ReactNode;
}) {
  const id = useId();
  return (
    <div className={`filter-field${className ? ` ${className}` : ''}`}>
      <label htmlFor={id}>{label}</label>
      {children(id)}
    </div>
  );
}

// ---------------------------------------------------------------------------------------------
// The windowed table

/** Fixed row height (px) that the windowing relies on; the CSS keeps rows on one line. */
export const ROW_HEIGHT = 40;
const OVERSCAN = 12;

/** Which rows to render for a scroll position: [start, end). */
export function visibleSlice(scrollTop: number, viewHeight: number, count: number): [number, number] {
  const height = viewHeight > 0 ? viewHeight : 800;
  const start = Math.max(0, Math.floor(scrollTop / ROW_HEIGHT) - OVERSCAN);
  const end = Math.min(count, Math.ceil((scrollTop + height) / ROW_HEIGHT) + OVERSCAN);
  return [start, end];
}

export function LogTable({
  rows,
  keyNames,
  routeNames,
  teamNames,
  onOpen,
  onScrolled,
  canAutoLoad = false,
  onNearEnd,
  resetKey,
}: {
  rows: LogEntry[];
  keyNames: Map<number, string>;
  routeNames: Map<number, string>;
  teamNames: Map<number, string>;
  onOpen: (id: number) => void;
  onScrolled?: (scrolled: boolean) => void;
  canAutoLoad?: boolean;
  onNearEnd?: () => void;
  /** When this changes (new filters), the table scrolls back to the top. */
  resetKey?: string;
}) {
  const { t } = useTranslation(ns);
  const box = useRef<HTMLDivElement>(null);
  const [view, setView] = useState({ top: 0, height: 0 });
  const [active, setActive] = useState(0);
  const frame = useRef(0);

  const measure = useCallback(() => {
    cancelAnimationFrame(frame.current);
    frame.current = requestAnimationFrame(() => {
      const el = box.current;
      if (el) setView({ top: el.scrollTop, height: el.clientHeight });
    });
  }, []);
  useEffect(() => {
    measure();
    window.addEventListener('resize', measure);
    return () => {
      window.removeEventListener('resize', measure);
      cancelAnimationFrame(frame.current);
    };
  }, [measure]);
  useEffect(() => onScrolled?.(view.top > ROW_HEIGHT * 3), [view.top, onScrolled]);
  useEffect(() => {
    if (box.current) box.current.scrollTop = 0;
    setView((v) => ({ ...v, top: 0 }));
    setActive(0);
  }, [resetKey]);

  const [start, end] = visibleSlice(view.top, view.height, rows.length);
  useEffect(() => {
    if (canAutoLoad && end >= rows.length - OVERSCAN) onNearEnd?.();
  }, [canAutoLoad, end, rows.length, onNearEnd]);

  const tabStop = active >= start && active < end ? active : start;
  const moveTo = (index: number) => {
    const i = Math.max(0, Math.min(rows.length - 1, index));
    setActive(i);
    const el = box.current;
    if (!el) return;
    // Bring the row into view first (it may not be rendered yet), then focus it.
    const top = i * ROW_HEIGHT;
    const head = ROW_HEIGHT;
    if (top < el.scrollTop) el.scrollTop = top;
    else if (top + ROW_HEIGHT + head > el.scrollTop + el.clientHeight) el.scrollTop = top + ROW_HEIGHT + head - el.clientHeight;
    requestAnimationFrame(() => el.querySelector<HTMLElement>(`tr[data-index="${i}"]`)?.focus());
  };
  const onKey = (e: KeyboardEvent<HTMLTableRowElement>, index: number, id: number) => {
    const page = Math.max(1, Math.floor((box.current?.clientHeight ?? 400) / ROW_HEIGHT) - 1);
    const moves: Record<string, number> = {
      ArrowDown: index + 1,
      ArrowUp: index - 1,
      PageDown: index + page,
      PageUp: index - page,
      Home: 0,
      End: rows.length - 1,
    };
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      onOpen(id);
    } else if (e.key in moves) {
      e.preventDefault();
      moveTo(moves[e.key]);
    }
  };

  return (
    <div className="table-wrap logs-scroll" ref={box} onScroll={measure}>
      <table className="logs-table" aria-describedby="logs-row-hint" aria-rowcount={rows.length + 1}>
        <caption className="sr-only" id="logs-row-hint">
          {t('row_hint')}
        </caption>
        <thead>
          <tr aria-rowindex={1}>
            <th scope="col">{t('col_time')}</th>
            <th scope="col">{t('col_key')}</th>
            <th scope="col" className="hide-narrow">
              {t('col_route')}
            </th>
            <th scope="col">{t('col_request')}</th>
            <th scope="col">{t('col_model')}</th>
            <th scope="col">{t('col_status')}</th>
            <th scope="col" className="num">
              {t('col_latency')}
            </th>
            <th scope="col" className="num">
              {t('col_tokens')}
            </th>
            <th scope="col" className="num hide-narrow">
              {t('col_cost')}
            </th>
          </tr>
        </thead>
        <tbody>
          {start > 0 && (
            <tr className="logs-spacer" aria-hidden="true" style={{ height: start * ROW_HEIGHT }}>
              <td colSpan={9} />
            </tr>
          )}
          {rows.slice(start, end).map((e, offset) => {
            const index = start + offset;
            const tone = rowTone(e);
            const keyName =
              e.key_id === null || e.key_id === undefined
                ? null
                : (keyNames.get(e.key_id) ?? t('deleted_key', { id: e.key_id }));
            const routeName = e.route ?? (e.route_id ? routeNames.get(e.route_id) : undefined);
            const team = e.team_id ? teamNames.get(e.team_id) : undefined;
            return (
              <tr
                key={e.id}
                data-index={index}
                aria-rowindex={index + 2}
                className={`clickable logs-row${tone ? ` row-${tone}` : ''}`}
                tabIndex={index === tabStop ? 0 : -1}
                onClick={() => {
                  setActive(index);
                  onOpen(e.id);
                }}
                onFocus={() => setActive(index)}
                onKeyDown={(ev) => onKey(ev, index, e.id)}
              >
                <td title={dateTime(e.ts)}>
                  <time dateTime={new Date(e.ts).toISOString()}>{shortTime(e.ts)}</time>
                </td>
                <td className="logs-key" title={team ? `${keyName ?? ''} · ${team}` : undefined}>
                  {keyName ?? <span className="muted">{t('no_key')}</span>}
                </td>
                <td className="hide-narrow logs-route">{routeName ?? <span className="muted">—</span>}</td>
                <td className="logs-request" title={`${e.method} ${e.path}${e.error ? `\n${e.error}` : ''}`}>
                  <span className="logs-method">{e.method}</span> <span className="mono">{e.path}</span>
                </td>
                <td className="logs-model">{e.model ?? <span className="muted">—</span>}</td>
                <td>
                  <StatusBadge status={e.status} />
                  {e.error && (
                    <span className="logs-error-mark" title={e.error}>
                      <span aria-hidden="true"> ⚠</span>
                      <span className="sr-only">{e.error}</span>
                    </span>
                  )}
                </td>
                <td className="num">{millis(e.latency_ms)}</td>
                <td className="num" title={integer(e.total_tokens)}>
                  {e.total_tokens ? compact(e.total_tokens) : <span className="muted">—</span>}
                  {e.estimated && e.total_tokens > 0 && (
                    <span className="muted" title={t('estimated')}>
                      *<span className="sr-only">{t('estimated')}</span>
                    </span>
                  )}
                </td>
                <td className="num hide-narrow">{e.cost_usd ? usd(e.cost_usd) : <span className="muted">—</span>}</td>
              </tr>
            );
          })}
          {end < rows.length && (
            <tr className="logs-spacer" aria-hidden="true" style={{ height: (rows.length - end) * ROW_HEIGHT }}>
              <td colSpan={9} />
            </tr>
          )}
        </tbody>
      </table>
    </div>
  );
}

/** Time of day for today's calls, date and time for older ones (formatters reused while scrolling). */
const timeFormats = new Map<string, Intl.DateTimeFormat>();
function shortTime(ms: number): string {
  const d = new Date(ms);
  const sameDay = d.toDateString() === new Date().toDateString();
  const lang = i18n.language || 'en';
  const cacheKey = `${lang}|${sameDay}`;
  let format = timeFormats.get(cacheKey);
  if (!format) {
    format = new Intl.DateTimeFormat(
      lang,
      sameDay
        ? { hour: '2-digit', minute: '2-digit', second: '2-digit' }
        : { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' },
    );
    timeFormats.set(cacheKey, format);
  }
  return format.format(d);
}

// ---------------------------------------------------------------------------------------------
// The detail drawer

function LogDrawer({
  id,
  onClose,
  keyNames,
  teamNames,
  routeNames,
  onFilter,
}: {
  id: number | null;
  onClose: () => void;
  keyNames: Map<number, string>;
  teamNames: Map<number, string>;
  routeNames: Map<number, string>;
  onFilter: (change: Partial<LogFilters>) => void;
}) {
  const { t } = useTranslation(ns);
  const entry = useQuery({
    queryKey: ['log', id],
    queryFn: () => unwrap(client.GET('/api/v1/logs/{id}', { params: { path: { id: id as number } } })),
    enabled: id !== null,
    staleTime: Infinity,
  });
  return (
    <Drawer open={id !== null} onClose={onClose} title={t('details')}>
      {entry.isPending ? (
        <Loading />
      ) : entry.isError ? (
        <ErrorState error={entry.error} onRetry={() => void entry.refetch()} />
      ) : (
        <LogDetails
          e={entry.data}
          keyNames={keyNames}
          teamNames={teamNames}
          routeNames={routeNames}
          onFilter={onFilter}
        />
      )}
    </Drawer>
  );
}

export function LogDetails({
  e,
  keyNames,
  teamNames,
  routeNames,
  onFilter,
}: {
  e: LogEntry;
  keyNames: Map<number, string>;
  teamNames: Map<number, string>;
  routeNames: Map<number, string>;
  onFilter?: (change: Partial<LogFilters>) => void;
}) {
  const { t } = useTranslation(ns);
  const dash = <span className="muted">{t('none')}</span>;
  const named = (name: string | undefined | null, id: number | null | undefined): ReactNode =>
    id === null || id === undefined ? (
      dash
    ) : (
      <>
        {name ?? `#${id}`} <span className="muted">#{id}</span>
      </>
    );
  const overhead =
    e.upstream_latency_ms !== null && e.upstream_latency_ms !== undefined
      ? Math.max(0, e.latency_ms - e.upstream_latency_ms)
      : null;
  const tone = rowTone(e);
  return (
    <div className="stack logs-details">
      <div className="row">
        <StatusBadge status={e.status} />
        <strong className="mono logs-details-path">
          {e.method} {e.path}
        </strong>
      </div>
      <div className="muted">
        <time dateTime={new Date(e.ts).toISOString()}>{dateTime(e.ts)}</time> · {relative(e.ts)}
      </div>
      {e.error && (
        <div className={`alert ${tone === 'warning' ? 'warning' : 'error'}`} role="note">
          <strong>{t('d_error')}:</strong> {e.error}
        </div>
      )}

      <section>
        <h3>{t('section_request')}</h3>
        <dl className="details">
          <dt>{t('d_id')}</dt>
          <dd className="mono">{e.id}</dd>
          <dt>{t('d_request_id')}</dt>
          <dd>
            {e.request_id ? (
              <span className="row">
                <span className="mono">{e.request_id}</span>
                <CopyButton text={e.request_id} />
              </span>
            ) : (
              dash
            )}
          </dd>
          <dt>{t('d_time')}</dt>
          <dd>
            {dateTime(e.ts)} <span className="muted mono">({e.ts})</span>
          </dd>
          <dt>{t('d_source')}</dt>
          <dd>
            <span className="badge">{e.source}</span>
          </dd>
          <dt>{t('d_key')}</dt>
          <dd>
            {named(e.key_id ? keyNames.get(e.key_id) : null, e.key_id)}
            {e.key_id && onFilter && (
              <button type="button" className="small" onClick={() => onFilter({ key_id: e.key_id ?? undefined })}>
                {t('only_this_key')}
              </button>
            )}
          </dd>
          <dt>{t('d_team')}</dt>
          <dd>{named(e.team_id ? teamNames.get(e.team_id) : null, e.team_id)}</dd>
          <dt>{t('d_route')}</dt>
          <dd>
            {e.route_id ? named(e.route ?? routeNames.get(e.route_id), e.route_id) : (e.route ?? dash)}
            {e.route_id && onFilter && (
              <button
                type="button"
                className="small"
                onClick={() => onFilter({ route_id: e.route_id ?? undefined })}
              >
                {t('only_this_route')}
              </button>
            )}
          </dd>
          <dt>{t('d_method')}</dt>
          <dd className="mono">{e.method}</dd>
          <dt>{t('d_path')}</dt>
          <dd className="mono">{e.path}</dd>
          <dt>{t('d_status')}</dt>
          <dd>
            <StatusBadge status={e.status} />
            {onFilter && (
              <button type="button" className="small" onClick={() => onFilter({ status: String(e.status) })}>
                {t('only_this_status')}
              </button>
            )}
          </dd>
          <dt>{t('d_model')}</dt>
          <dd className="mono">{e.model ?? dash}</dd>
        </dl>
      </section>

      <section>
        <h3>{t('section_timing')}</h3>
        <dl className="details">
          <dt>{t('d_latency')}</dt>
          <dd>{millis(e.latency_ms)}</dd>
          <dt>{t('d_upstream')}</dt>
          <dd>{millis(e.upstream_latency_ms)}</dd>
          <dt>{t('d_overhead')}</dt>
          <dd>{millis(overhead)}</dd>
        </dl>
      </section>

      <section>
        <h3>{t('section_tokens')}</h3>
        <dl className="details">
          <dt>{t('d_prompt')}</dt>
          <dd>{integer(e.prompt_tokens)}</dd>
          <dt>{t('d_cached')}</dt>
          <dd>{integer(e.cached_tokens)}</dd>
          <dt>{t('d_completion')}</dt>
          <dd>{integer(e.completion_tokens)}</dd>
          <dt>{t('d_reasoning')}</dt>
          <dd>{integer(e.reasoning_tokens)}</dd>
          <dt>{t('d_total')}</dt>
          <dd>
            <strong>{integer(e.total_tokens)}</strong>
          </dd>
          <dt>{t('d_estimated')}</dt>
          <dd>
            {e.estimated ? <span className="badge warning">{t('estimated')}</span> : <span>{t('reported')}</span>}
          </dd>
          <dt>{t('d_cost')}</dt>
          <dd>{usd(e.cost_usd)}</dd>
        </dl>
      </section>

      <section>
        <h3>{t('section_client')}</h3>
        <dl className="details">
          <dt>{t('d_ip')}</dt>
          <dd className="mono">{e.client_ip ?? dash}</dd>
          <dt>{t('d_user_agent')}</dt>
          <dd className="mono">{e.user_agent ?? dash}</dd>
        </dl>
      </section>
    </div>
  );
}
