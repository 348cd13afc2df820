// Usage analytics: totals, trends, top-N, distributions, per-model tokens, quotas and exports.
// Every figure comes from the hourly roll-ups (`/api/v1/usage/summary|series|top`), so the page
// stays fast however many raw events there are; the queries run in parallel and the browser only
// maps their (small) answers to charts. The filters live in the URL so that every view is linkable.
import { useEffect, useId, useMemo, useRef, useState, type ReactNode } from 'react';
import { Link, useSearchParams } from 'react-router';
import { useQuery, useQueryClient, type UseQueryResult } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { client, downloadUrl, unwrap, type Schemas } from '../api/client';
import {
  REFERENCE_STALE_MS,
  useKeys,
  useQuotas,
  useRoutes,
  useTeams,
  useUsageSeries,
  useUsageSummary,
  useUsageTop,
  type SeriesQuery,
  type TopQuery,
  type UsageQuery,
} from '../api/queries';
import type { operations } from '../api/schema';
import { EXPORT_FORMATS, isSortOrder, type Bucket, type ExportFormat, type Grouping, type SortOrder } from '../api/vocabulary';
import { usePermissions } from '../auth';
import { defineMessages } from '../i18n';
import { BarList, Distribution, Gauge, TrendChart } from '../components/charts';
import {
  Empty,
  ErrorState,
  Loading,
  NamedOptions,
  Num,
  PageHeader,
  QueryState,
  Segmented,
  StatCard,
  TeamOptions,
} from '../components/ui';
import { compact, date, integer, millis, percent, usd } from '../format';
import { fromLocalInput, toLocalInput } from '../localTime';
import { positiveInt } from '../params';

const ns = defineMessages(
  'analytics',
  {
    title: 'Usage analytics',
    totals: 'Totals',
    subtitle: 'Calls, latency, tokens and cost from the hourly roll-ups.',
    filters: 'Filters',
    time_range: 'Time range',
    custom: 'Custom',
    from: 'Start time',
    to: 'End time',
    apply: 'Apply',
    all_keys: 'All keys',
    all_routes: 'All routes',
    all_models: 'All models',
    all_statuses: 'All statuses',
    key: 'Key',
    route: 'Route',
    model: 'Model',
    status: 'Status',
    rank_by: 'Rank by',
    by_calls: 'Calls',
    by_tokens: 'Tokens',
    metric_calls: 'calls',
    metric_tokens: 'tokens',
    clear_filters: 'Clear filters',
    refresh: 'Refresh',
    err_custom_missing: 'Choose both a start and an end.',
    err_custom_order: 'The start must be before the end.',
    err_custom_long: 'A range covers at most 400 days.',
    err_custom_bounds: 'Choose dates between 1970 and 9999.',
    calls: 'Calls',
    success_rate: 'Success rate',
    errors: 'Errors',
    errors_hint: 'Status 400 and above',
    avg_latency: 'Average latency',
    percentiles: 'p50 / p95 / p99',
    prompt_tokens: 'Prompt tokens',
    completion_tokens: 'Completion tokens',
    total_tokens: 'Total tokens',
    cached_tokens: 'Cached tokens',
    reasoning_tokens: 'Reasoning tokens',
    cost: 'Cost',
    estimated_hint: '{{count}} calls with estimated tokens',
    reported_tokens: 'Reported tokens',
    reported: 'reported',
    reported_hint: 'From token counters, whole UTC days; not included above.',
    vs_previous: '{{delta}} vs previous period',
    vs_previous_pts: '{{delta}} pts vs previous period',
    status_filter_hint: 'The status filter applies to raw calls only; totals include every status.',
    no_previous: 'no calls in the previous period',
    trend_24h: 'Last 24 hours',
    trend_24h_desc: 'Calls per hour (left axis) and latency (right axis).',
    trend_24h_chart: 'Calls and latency per hour over the last 24 hours',
    avg_latency_series: 'Average latency',
    p95_latency_series: 'p95 latency',
    trend_range: 'Trend',
    trend_hourly: 'Per hour, in your time zone.',
    trend_daily: 'Per day (UTC days).',
    trend_chart: 'Calls and tokens over the selected range',
    reported_series: 'Reported tokens (counters)',
    no_calls: 'No calls in this range.',
    top_keys: 'Top keys',
    top_routes: 'Top routes',
    top_models: 'Top models',
    top_teams: 'Top teams',
    top_chart: '{{title}} by {{metric}}',
    name: 'Name',
    tokens: 'Tokens',
    p95: 'p95',
    filter_by: 'Show only {{name}}',
    route_distribution: 'Route distribution',
    route_distribution_desc: 'Share of {{metric}} per route.',
    status_distribution: 'Status classes',
    status_distribution_desc: 'Calls by response status class.',
    others: 'Others',
    models_title: 'Tokens per model',
    models_table: 'Tokens per model',
    all_models_row: 'All calls',
    latency_title: 'Latency percentiles',
    latency_desc: 'From the roll-ups’ latency histogram: accurate to a bucket’s width.',
    latency_chart: 'Latency percentiles',
    avg: 'Average',
    quota_title: 'Token quota',
    quota_gauge: 'Token quota used',
    quota_instance: 'Instance',
    quota_team: 'Team {{name}}',
    no_quota: 'No quota set',
    no_quota_hint: '{{used}} tokens used this period.',
    set_quota: 'Set a quota in Settings',
    used: 'Used',
    quota: 'Quota',
    remaining: 'Remaining',
    period: 'Period',
    period_month: 'This month (since {{date}}, UTC)',
    period_total: 'All time',
    calls_in_period: 'Calls in period',
    all_quotas: 'All quotas',
    scope: 'Scope',
    of_quota: '{{used}} of {{quota}}',
    export: 'Export',
    export_desc: 'Download with the current filters.',
    dataset: 'Dataset',
    dataset_events: 'Raw calls (events)',
    dataset_series: 'Time series',
    dataset_top_key: 'Totals per key',
    dataset_top_route: 'Totals per route',
    dataset_top_model: 'Totals per model',
    dataset_top_team: 'Totals per team',
    format: 'Format',
    download: 'Download',
    events_hint: 'Raw calls are kept for the retention period; large exports stream.',
    status_class: '{{class}}xx',
    none: '(none)',
    team_n: 'Team #{{id}}',
  },
  {
    'zh-CN': {
      title: '用量分析',
      totals: '总计',
      subtitle: '基于每小时汇总数据的调用、延迟、Token 与费用。',
      filters: '筛选',
      time_range: '时间范围',
      custom: '自定义',
      from: '开始时间',
      to: '结束时间',
      apply: '应用',
      all_keys: '全部密钥',
      all_routes: '全部路由',
      all_models: '全部模型',
      all_statuses: '全部状态',
      key: '密钥',
      route: '路由',
      model: '模型',
      status: '状态',
      rank_by: '排序依据',
      by_calls: '调用次数',
      by_tokens: 'Token',
      metric_calls: '调用次数',
      metric_tokens: 'Token',
      clear_filters: '清除筛选',
      refresh: '刷新',
      err_custom_missing: '请选择开始和结束时间。',
      err_custom_order: '开始时间必须早于结束时间。',
      err_custom_long: '时间范围最长 400 天。',
      err_custom_bounds: '请选择 1970 年至 9999 年之间的日期。',
      calls: '调用次数',
      success_rate: '成功率',
      errors: '错误',
      errors_hint: '状态码 400 及以上',
      avg_latency: '平均延迟',
      percentiles: 'p50 / p95 / p99',
      prompt_tokens: '输入 Token',
      completion_tokens: '输出 Token',
      total_tokens: 'Token 总数',
      cached_tokens: '缓存 Token',
      reasoning_tokens: '推理 Token',
      cost: '费用',
      estimated_hint: '{{count}} 次调用的 Token 为估算值',
      reported_tokens: '上报的 Token',
      reported: '上报',
      reported_hint: '来自 Token 计数器，按整 UTC 日统计；未计入上方数据。',
      vs_previous: '较上一周期 {{delta}}',
      vs_previous_pts: '较上一周期 {{delta}} 个百分点',
      status_filter_hint: '状态筛选仅适用于原始调用；汇总数据包含所有状态。',
      no_previous: '上一周期无调用',
      trend_24h: '最近 24 小时',
      trend_24h_desc: '每小时调用次数（左轴）与延迟（右轴）。',
      trend_24h_chart: '最近 24 小时每小时的调用次数与延迟',
      avg_latency_series: '平均延迟',
      p95_latency_series: 'p95 延迟',
      trend_range: '趋势',
      trend_hourly: '按小时，使用您的时区。',
      trend_daily: '按天（UTC 日）。',
      trend_chart: '所选范围内的调用次数与 Token',
      reported_series: '上报的 Token（计数器）',
      no_calls: '此范围内没有调用。',
      top_keys: '密钥排行',
      top_routes: '路由排行',
      top_models: '模型排行',
      top_teams: '团队排行',
      top_chart: '按{{metric}}的{{title}}',
      name: '名称',
      tokens: 'Token',
      p95: 'p95',
      filter_by: '只看 {{name}}',
      route_distribution: '路由分布',
      route_distribution_desc: '各路由的{{metric}}占比。',
      status_distribution: '状态类别',
      status_distribution_desc: '按响应状态类别统计的调用次数。',
      others: '其他',
      models_title: '各模型 Token 用量',
      models_table: '各模型 Token 用量',
      all_models_row: '全部调用',
      latency_title: '延迟百分位',
      latency_desc: '来自汇总数据的延迟直方图：精度为一个分桶的宽度。',
      latency_chart: '延迟百分位',
      avg: '平均',
      quota_title: 'Token 配额',
      quota_gauge: '已用 Token 配额',
      quota_instance: '实例',
      quota_team: '团队 {{name}}',
      no_quota: '未设置配额',
      no_quota_hint: '本周期已用 {{used}} Token。',
      set_quota: '在设置中设定配额',
      used: '已用',
      quota: '配额',
      remaining: '剩余',
      period: '周期',
      period_month: '本月（自 {{date}} 起，UTC）',
      period_total: '全部时间',
      calls_in_period: '周期内调用次数',
      all_quotas: '全部配额',
      scope: '范围',
      of_quota: '{{used}} / {{quota}}',
      export: '导出',
      export_desc: '按当前筛选条件下载。',
      dataset: '数据集',
      dataset_events: '原始调用（事件）',
      dataset_series: '时间序列',
      dataset_top_key: '按密钥汇总',
      dataset_top_route: '按路由汇总',
      dataset_top_model: '按模型汇总',
      dataset_top_team: '按团队汇总',
      format: '格式',
      download: '下载',
      events_hint: '原始调用仅在保留期内保存；大文件以流式传输。',
      status_class: '{{class}}xx',
      none: '（无）',
      team_n: '团队 #{{id}}',
    },
    'zh-TW': {
      title: '用量分析',
      totals: '總計',
      subtitle: '根據每小時彙總資料的呼叫、延遲、Token 與費用。',
      filters: '篩選',
      time_range: '時間範圍',
      custom: '自訂',
      from: '開始時間',
      to: '結束時間',
      apply: '套用',
      all_keys: '全部金鑰',
      all_routes: '全部路由',
      all_models: '全部模型',
      all_statuses: '全部狀態',
      key: '金鑰',
      route: '路由',
      model: '模型',
      status: '狀態',
      rank_by: '排序依據',
      by_calls: '呼叫次數',
      by_tokens: 'Token',
      metric_calls: '呼叫次數',
      metric_tokens: 'Token',
      clear_filters: '清除篩選',
      refresh: '重新整理',
      err_custom_missing: '請選擇開始與結束時間。',
      err_custom_order: '開始時間必須早於結束時間。',
      err_custom_long: '時間範圍最長 400 天。',
      err_custom_bounds: '請選擇 1970 年至 9999 年之間的日期。',
      calls: '呼叫次數',
      success_rate: '成功率',
      errors: '錯誤',
      errors_hint: '狀態碼 400 以上',
      avg_latency: '平均延遲',
      percentiles: 'p50 / p95 / p99',
      prompt_tokens: '輸入 Token',
      completion_tokens: '輸出 Token',
      total_tokens: 'Token 總數',
      cached_tokens: '快取 Token',
      reasoning_tokens: '推理 Token',
      cost: '費用',
      estimated_hint: '{{count}} 次呼叫的 Token 為估算值',
      reported_tokens: '回報的 Token',
      reported: '回報',
      reported_hint: '來自 Token 計數器，以整個 UTC 日計算；未計入上方資料。',
      vs_previous: '較上一週期 {{delta}}',
      vs_previous_pts: '較上一週期 {{delta}} 個百分點',
      status_filter_hint: '狀態篩選僅適用於原始呼叫；彙總資料包含所有狀態。',
      no_previous: '上一週期無呼叫',
      trend_24h: '最近 24 小時',
      trend_24h_desc: '每小時呼叫次數（左軸）與延遲（右軸）。',
      trend_24h_chart: '最近 24 小時每小時的呼叫次數與延遲',
      avg_latency_series: '平均延遲',
      p95_latency_series: 'p95 延遲',
      trend_range: '趨勢',
      trend_hourly: '每小時，使用您的時區。',
      trend_daily: '每日（UTC 日）。',
      trend_chart: '所選範圍內的呼叫次數與 Token',
      reported_series: '回報的 Token（計數器）',
      no_calls: '此範圍內沒有呼叫。',
      top_keys: '金鑰排行',
      top_routes: '路由排行',
      top_models: '模型排行',
      top_teams: '團隊排行',
      top_chart: '依{{metric}}的{{title}}',
      name: '名稱',
      tokens: 'Token',
      p95: 'p95',
      filter_by: '只看 {{name}}',
      route_distribution: '路由分布',
      route_distribution_desc: '各路由的{{metric}}占比。',
      status_distribution: '狀態類別',
      status_distribution_desc: '依回應狀態類別統計的呼叫次數。',
      others: '其他',
      models_title: '各模型 Token 用量',
      models_table: '各模型 Token 用量',
      all_models_row: '全部呼叫',
      latency_title: '延遲百分位數',
      latency_desc: '來自彙總資料的延遲直方圖：精確度為一個區間的寬度。',
      latency_chart: '延遲百分位數',
      avg: '平均',
      quota_title: 'Token 配額',
      quota_gauge: '已用 Token 配額',
      quota_instance: '執行個體',
      quota_team: '團隊 {{name}}',
      no_quota: '未設定配額',
      no_quota_hint: '本週期已用 {{used}} Token。',
      set_quota: '在設定中設定配額',
      used: '已用',
      quota: '配額',
      remaining: '剩餘',
      period: '週期',
      period_month: '本月（自 {{date}} 起，UTC）',
      period_total: '全部時間',
      calls_in_period: '週期內呼叫次數',
      all_quotas: '全部配額',
      scope: '範圍',
      of_quota: '{{used}} / {{quota}}',
      export: '匯出',
      export_desc: '依目前的篩選條件下載。',
      dataset: '資料集',
      dataset_events: '原始呼叫（事件）',
      dataset_series: '時間序列',
      dataset_top_key: '依金鑰彙總',
      dataset_top_route: '依路由彙總',
      dataset_top_model: '依模型彙總',
      dataset_top_team: '依團隊彙總',
      format: '格式',
      download: '下載',
      events_hint: '原始呼叫只在保存期間內保留；大型匯出以串流傳輸。',
      status_class: '{{class}}xx',
      none: '（無）',
      team_n: '團隊 #{{id}}',
    },
  },
);

// ---------------------------------------------------------------------------------------------
// Pure helpers (exported for the tests): URL params ⇄ filters ⇄ API queries, buckets, chart data.

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;
/** The API refuses ranges longer than this (`usage.rs`: `MAX_RANGE_MS`). */
export const MAX_RANGE_MS = 400 * DAY_MS;
/** The API refuses times from the year 9999 on (`views.rs`: `MAX_TIME_MS`). */
export const MAX_TIME_MS = 253_402_300_799_000;
/** Hourly series cover at most 7 days (`usage.rs`: `series`). */
export const MAX_HOURLY_SPAN_MS = 7 * DAY_MS;

export const PRESETS = ['24h', '7d', '30d', '90d'] as const;
export type Preset = (typeof PRESETS)[number];
export const PRESET_MS: Record<Preset, number> = {
  '24h': DAY_MS,
  '7d': 7 * DAY_MS,
  '30d': 30 * DAY_MS,
  '90d': 90 * DAY_MS,
};
export const DEFAULT_PRESET: Preset = '7d';

export type Order = SortOrder;
export type StatusClass = 2 | 3 | 4 | 5;

/** What the page shows, as read from the URL. */
export interface AnalyticsFilters {
  range: Preset | 'custom';
  /** Custom range start, epoch ms. */
  from?: number;
  /** Custom range end (exclusive), epoch ms. */
  to?: number;
  team_id?: number;
  key_id?: number;
  route_id?: number;
  model?: string;
  status_class?: StatusClass;
  order: Order;
}

export type ExportQuery = NonNullable<operations['export']['parameters']['query']>;

/** An instant in the URL: ISO 8601 (what the page writes) or epoch ms. */
export function parseInstant(text: string | null): number | undefined {
  if (!text) return undefined;
  const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  return Number.isFinite(ms) ? ms : undefined;
}

/** The order in the URL, or `calls` (the API's default). */
function sortOrderOf(text: string | null): SortOrder {
  return isSortOrder(text) ? text : 'calls';
}

/** Reads the filters from the URL's search params; anything unknown falls back to the default. */
export function parseFilters(params: URLSearchParams): AnalyticsFilters {
  const raw = params.get('range');
  const from = parseInstant(params.get('from'));
  const to = parseInstant(params.get('to'));
  const range: AnalyticsFilters['range'] =
    raw === 'custom' || (raw === null && from !== undefined)
      ? 'custom'
      : (PRESETS as readonly string[]).includes(raw ?? '')
        ? (raw as Preset)
        : DEFAULT_PRESET;
  const status = Number(params.get('status_class'));
  const model = params.get('model');
  return {
    range,
    ...(range === 'custom' ? { from, to } : {}),
    team_id: positiveInt(params.get('team_id')),
    key_id: positiveInt(params.get('key_id')),
    route_id: positiveInt(params.get('route_id')),
    model: model ? model.slice(0, 200) : undefined,
    status_class: [2, 3, 4, 5].includes(status) ? (status as StatusClass) : undefined,
    order: sortOrderOf(params.get('order')),
  };
}

/** Writes filters back as search params, leaving out defaults so that links stay short. */
export function filtersToParams(f: AnalyticsFilters): URLSearchParams {
  const p = new URLSearchParams();
  if (f.range === 'custom') {
    p.set('range', 'custom');
    if (f.from !== undefined) p.set('from', new Date(f.from).toISOString());
    if (f.to !== undefined) p.set('to', new Date(f.to).toISOString());
  } else if (f.range !== DEFAULT_PRESET) {
    p.set('range', f.range);
  }
  if (f.team_id) p.set('team_id', String(f.team_id));
  if (f.key_id) p.set('key_id', String(f.key_id));
  if (f.route_id) p.set('route_id', String(f.route_id));
  if (f.model) p.set('model', f.model);
  if (f.status_class) p.set('status_class', String(f.status_class));
  if (f.order !== 'calls') p.set('order', f.order);
  return p;
}

export type RangeError = 'err_custom_missing' | 'err_custom_order' | 'err_custom_long' | 'err_custom_bounds';

/** Why the API would refuse this range (the same checks as `UsageQuery::scope`), or null. */
export function rangeError(f: Pick<AnalyticsFilters, 'range' | 'from' | 'to'>): RangeError | null {
  if (f.range !== 'custom') return null;
  if (f.from === undefined || f.to === undefined) return 'err_custom_missing';
  if (f.from < 0 || f.to >= MAX_TIME_MS) return 'err_custom_bounds';
  if (f.from >= f.to) return 'err_custom_order';
  if (f.to - f.from > MAX_RANGE_MS) return 'err_custom_long';
  return null;
}

/** The window the filters cover, epoch ms (presets end now). */
export function windowOf(f: AnalyticsFilters, now: number): { from: number; to: number } {
  if (f.range === 'custom') return { from: f.from ?? now - DAY_MS, to: f.to ?? now };
  return { from: now - PRESET_MS[f.range], to: now };
}

/** Hourly buckets up to 7 days (the API's limit), daily beyond. */
export function pickBucket(spanMs: number): Bucket {
  return spanMs <= MAX_HOURLY_SPAN_MS ? 'hour' : 'day';
}

/** The bucket of the filters' range. */
export function bucketOf(f: AnalyticsFilters): Bucket {
  return pickBucket(f.range === 'custom' ? (f.to ?? 0) - (f.from ?? 0) : PRESET_MS[f.range]);
}

/** The filters other than time, as API query fields. */
function dimensionQuery(f: AnalyticsFilters): UsageQuery {
  const q: UsageQuery = {};
  if (f.team_id) q.team_id = f.team_id;
  if (f.key_id) q.key_id = f.key_id;
  if (f.route_id) q.route_id = f.route_id;
  if (f.model) q.model = f.model;
  if (f.status_class) q.status_class = f.status_class;
  return q;
}

/**
 * The query of `/api/v1/usage/summary` (and the base of series and top): a preset is sent as
 * `range` so that the server's clock ends it; a custom range as `from` and `to` (never both forms).
 */
export function usageQuery(f: AnalyticsFilters): UsageQuery {
  const time: UsageQuery = f.range === 'custom' ? { from: f.from, to: f.to } : { range: f.range };
  return { ...time, ...dimensionQuery(f) };
}

/** The series of the selected range, with the bucket the API allows for it. */
export function seriesQuery(f: AnalyticsFilters): SeriesQuery {
  return { ...usageQuery(f), bucket: bucketOf(f) };
}

/** The last 24 hours (ending at a custom range's end), hourly. Same query as a 24h preset's series. */
export function last24hQuery(f: AnalyticsFilters): SeriesQuery {
  const time: SeriesQuery =
    f.range === 'custom' && f.to !== undefined ? { from: f.to - DAY_MS, to: f.to } : { range: '24h' };
  return { ...time, ...dimensionQuery(f), bucket: 'hour' };
}

/** The window just before the selected one, for "vs previous period"; null beyond the API's reach. */
export function previousQuery(f: AnalyticsFilters, now: number): UsageQuery | null {
  const { from, to } = windowOf(f, now);
  const span = to - from;
  const prevFrom = from - span;
  if (prevFrom < 0 || span <= 0) return null;
  // Whole minutes, so the query (and its cache key) stays the same between renders.
  const end = Math.floor(from / 60_000) * 60_000;
  return { from: end - span, to: end, ...dimensionQuery(f) };
}

/** Relative change, or null when there is nothing to compare with. */
export function delta(current: number, previous: number | undefined | null): number | null {
  if (previous === undefined || previous === null || previous === 0) return null;
  return (current - previous) / previous;
}

/** Days to ask `/api/console/usage-trend` for so that it covers the window (7 to 90), or null. */
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

export type ExportDataset = 'events' | 'series' | 'top_key' | 'top_route' | 'top_model' | 'top_team';

/** The export URL of a dataset with the current filters (the export takes `from`/`to`, not `range`). */
export function exportHref(f: AnalyticsFilters, dataset: ExportDataset, format: ExportFormat, now: number): string {
  const { from, to } = windowOf(f, now);
  const q: ExportQuery = { format, from, to };
  if (f.team_id) q.team_id = f.team_id;
  if (f.key_id) q.key_id = f.key_id;
  if (f.route_id) q.route_id = f.route_id;
  if (f.model) q.model = f.model;
  if (dataset === 'events') {
    q.dataset = 'events';
    if (f.status_class) q.status = `${f.status_class}xx`;
  } else if (dataset === 'series') {
    q.dataset = 'series';
    q.bucket = pickBucket(to - from);
  } else {
    q.dataset = 'top';
    q.by = dataset.slice(4);
  }
  return downloadUrl('/api/v1/usage/export', q as Record<string, string | number | undefined>);
}

// ---------------------------------------------------------------------------------------------
// The page.

type Item = Schemas['TopItem'];
type T = (key: string, opts?: Record<string, unknown>) => string;

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
  const days = ok && can.isAdmin && noDimensions ? reportedDays(filters, now) : null;
  const trend = useQuery({
    queryKey: ['usage', 'trend', days],
    queryFn: () => unwrap(client.GET('/api/console/usage-trend', { params: { query: { days: days ?? 7 } } })),
    enabled: days !== null,
  });

  const win = windowOf(filters, now);
  const reportedTotal = trend.data && days !== null ? reportedInWindow(trend.data.data, win.from, win.to) : 0;
  const bucket = bucketOf(filters);
  const rangeChart = useMemo(
    () => (series.data ? seriesToChart(series.data, bucket, lang, days !== null ? trend.data?.data : undefined) : null),
    [series.data, bucket, lang, days, trend.data],
  );
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

/** Only the time part of the filters (for the model options). */
function windowQuery(f: AnalyticsFilters): UsageQuery {
  return f.range === 'custom' ? { from: f.from, to: f.to } : { range: f.range };
}

export function FilterBar({
  filters,
  update,
  onClear,
  teams,
  routes,
  keys,
  models,
  invalid,
  t,
  now,
}: {
  filters: AnalyticsFilters;
  update: (patch: Partial<AnalyticsFilters>) => void;
  onClear: () => void;
  teams: Schemas['TeamView'][];
  routes: Schemas['RouteView'][];
  keys: Schemas['KeyView'][];
  models: string[];
  invalid: RangeError | null;
  t: T;
  now: number;
}) {
  const [from, setFrom] = useState(() => toLocalInput(filters.from));
  const [to, setTo] = useState(() => toLocalInput(filters.to));
  useEffect(() => {
    setFrom(toLocalInput(filters.from));
    setTo(toLocalInput(filters.to));
  }, [filters.from, filters.to]);
  const errorId = useId();
  const draft = { range: 'custom' as const, from: fromLocalInput(from), to: fromLocalInput(to) };
  const draftError = rangeError(draft);
  const shownError = filters.range === 'custom' ? (draftError ?? invalid) : null;
  const any = filters.team_id || filters.key_id || filters.route_id || filters.model || filters.status_class;
  const keyOptions = filters.team_id ? keys.filter((k) => k.team_id === filters.team_id) : keys;
  const modelOptions = filters.model && !models.includes(filters.model) ? [filters.model, ...models] : models;

  return (
    <section className="card filters-card" aria-label={t('filters')}>
      <div className="filters">
        <div className="filter-group">
          <span className="filter-label" aria-hidden="true">
            {t('time_range')}
          </span>
          <Segmented
            label={t('time_range')}
            value={filters.range}
            options={[
              ...PRESETS.map((p) => ({ value: p, label: t(`common:range_${p}`) })),
              { value: 'custom' as const, label: t('custom') },
            ]}
            onChange={(v) => {
              if (v === 'custom') {
                const w = windowOf(filters, now);
                update({ range: 'custom', from: Math.floor(w.from / 60_000) * 60_000, to: Math.ceil(w.to / 60_000) * 60_000 });
              } else {
                update({ range: v, from: undefined, to: undefined });
              }
            }}
          />
        </div>
        {filters.range === 'custom' && (
          <form
            className="custom-range"
            onSubmit={(e) => {
              e.preventDefault();
              if (!draftError) update({ range: 'custom', from: draft.from, to: draft.to });
            }}
          >
            <label>
              {t('from')}
              <input
                type="datetime-local"
                value={from}
                onChange={(e) => setFrom(e.target.value)}
                aria-invalid={shownError ? true : undefined}
                aria-describedby={shownError ? errorId : undefined}
              />
            </label>
            <label>
              {t('to')}
              <input
                type="datetime-local"
                value={to}
                onChange={(e) => setTo(e.target.value)}
                aria-invalid={shownError ? true : undefined}
                aria-describedby={shownError ? errorId : undefined}
              />
            </label>
            <button type="submit" disabled={draftError !== null}>
              {t('apply')}
            </button>
            {shownError && (
              <small className="field-error" id={errorId} role="alert">
                {t(shownError)}
              </small>
            )}
          </form>
        )}
      </div>
      <div className="filters">
        <label>
          {t('common:team')}
          <select
            value={filters.team_id ?? ''}
            onChange={(e) => {
              const team_id = positiveInt(e.target.value);
              const key = keys.find((k) => k.id === filters.key_id);
              update({ team_id, key_id: team_id && key && key.team_id !== team_id ? undefined : filters.key_id });
            }}
          >
            <TeamOptions teams={teams} all />
          </select>
        </label>
        <label>
          {t('key')}
          <select value={filters.key_id ?? ''} onChange={(e) => update({ key_id: positiveInt(e.target.value) })}>
            <NamedOptions
              items={keyOptions}
              selected={filters.key_id}
              all={t('all_keys')}
              label={(k) => `${k.name} (${k.prefix})`}
            />
          </select>
        </label>
        <label>
          {t('route')}
          <select value={filters.route_id ?? ''} onChange={(e) => update({ route_id: positiveInt(e.target.value) })}>
            <NamedOptions
              items={routes}
              selected={filters.route_id}
              all={t('all_routes')}
              label={(r) => `${r.name} (${r.prefix})`}
            />
          </select>
        </label>
        <label>
          {t('model')}
          <select value={filters.model ?? ''} onChange={(e) => update({ model: e.target.value || undefined })}>
            <option value="">{t('all_models')}</option>
            {modelOptions.map((m) => (
              <option key={m} value={m}>
                {m}
              </option>
            ))}
          </select>
        </label>
        <label>
          {t('status')}
          <select
            value={filters.status_class ?? ''}
            onChange={(e) => update({ status_class: (positiveInt(e.target.value) as StatusClass | undefined) ?? undefined })}
          >
            <option value="">{t('all_statuses')}</option>
            {[2, 3, 4, 5].map((c) => (
              <option key={c} value={c}>
                {t('status_class', { class: c })}
              </option>
            ))}
          </select>
        </label>
        <div className="filter-group">
          <span className="filter-label" aria-hidden="true">
            {t('rank_by')}
          </span>
          <Segmented
            label={t('rank_by')}
            value={filters.order}
            options={[
              { value: 'calls' as const, label: t('by_calls') },
              { value: 'tokens' as const, label: t('by_tokens') },
            ]}
            onChange={(order) => update({ order })}
          />
        </div>
        {any ? (
          <button type="button" className="ghost" onClick={onClear}>
            {t('clear_filters')}
          </button>
        ) : null}
      </div>
    </section>
  );
}

function SummaryCards({
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
            {millis(s.p99_latency_ms)}
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
      <StatCard label={t('cost')} value={usd(s.cost_usd)} hint={hint((x) => x.cost_usd, true)} />
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

function TopCard({
  id,
  title,
  query,
  metricLabel,
  metricOf,
  onPick,
  sortBy,
  t,
}: {
  id: string;
  title: string;
  query: UseQueryResult<Item[]>;
  metricLabel: string;
  metricOf: (i: Item) => number;
  onPick: (i: Item) => void;
  /** Re-rank client-side (the models list is fetched once, by tokens). */
  sortBy?: Order;
  t: T;
}) {
  return (
    <section className="card" aria-labelledby={id}>
      <h2 id={id}>{title}</h2>
      <QueryState query={query} empty={t('no_calls')}>
        {(data) => {
          const rows = (sortBy ? [...data].sort((a, b) => metricOf(b) - metricOf(a)) : data).slice(0, 10);
          return (
            <>
              <BarList
                label={t('top_chart', { title, metric: metricLabel })}
                items={rows.map((i) => ({ label: i.name === '(none)' ? t('none') : i.name, value: metricOf(i) }))}
              />
              <div className="table-wrap top-table">
                <table>
                  <thead>
                    <tr>
                      <th scope="col">{t('name')}</th>
                      <th scope="col" className="num">
                        {t('calls')}
                      </th>
                      <th scope="col" className="num">
                        {t('tokens')}
                      </th>
                      <th scope="col" className="num">
                        {t('success_rate')}
                      </th>
                      <th scope="col" className="num">
                        {t('p95')}
                      </th>
                      <th scope="col" className="num">
                        {t('cost')}
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {rows.map((i) => (
                      <tr key={`${i.id ?? ''}:${i.name}`}>
                        <th scope="row" className="name-cell">
                          {i.name === '(none)' || i.id === 0 ? (
                            <span className="muted">{t('none')}</span>
                          ) : (
                            <button
                              type="button"
                              className="link-button"
                              onClick={() => onPick(i)}
                              title={t('filter_by', { name: i.name })}
                            >
                              {i.name}
                            </button>
                          )}
                        </th>
                        <td className="num">
                          <Num value={i.calls} />
                        </td>
                        <td className="num">
                          <Num value={i.total_tokens} />
                        </td>
                        <td className="num">{percent(i.success_rate)}</td>
                        <td className="num">{millis(i.p95_latency_ms)}</td>
                        <td className="num">{usd(i.cost_usd)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            </>
          );
        }}
      </QueryState>
    </section>
  );
}

function ModelsTable({ items, total, t }: { items: Item[]; total?: Schemas['SummaryView']; t: T }) {
  return (
    <div className="table-wrap" tabIndex={0} role="region" aria-label={t('models_table')}>
      <table aria-label={t('models_table')}>
        <thead>
          <tr>
            <th scope="col">{t('model')}</th>
            <th scope="col" className="num">
              {t('calls')}
            </th>
            <th scope="col" className="num">
              {t('prompt_tokens')}
            </th>
            <th scope="col" className="num">
              {t('completion_tokens')}
            </th>
            <th scope="col" className="num">
              {t('cached_tokens')}
            </th>
            <th scope="col" className="num">
              {t('reasoning_tokens')}
            </th>
            <th scope="col" className="num">
              {t('total_tokens')}
            </th>
            <th scope="col" className="num">
              {t('cost')}
            </th>
          </tr>
        </thead>
        <tbody>
          {items.map((m) => (
            <tr key={m.name}>
              <th scope="row" className="mono name-cell">
                {m.name === '(none)' ? <span className="muted">{t('none')}</span> : m.name}
              </th>
              <td className="num">
                <Num value={m.calls} />
              </td>
              <td className="num">
                <Num value={m.prompt_tokens} />
              </td>
              <td className="num">
                <Num value={m.completion_tokens} />
              </td>
              <td className="num">
                <Num value={m.cached_tokens} />
              </td>
              <td className="num">
                <Num value={m.reasoning_tokens} />
              </td>
              <td className="num">
                <Num value={m.total_tokens} />
              </td>
              <td className="num">{usd(m.cost_usd)}</td>
            </tr>
          ))}
        </tbody>
        {total && items.length > 1 && (
          <tfoot>
            <tr>
              <th scope="row">{t('all_models_row')}</th>
              <td className="num">
                <Num value={total.calls} />
              </td>
              <td className="num">
                <Num value={total.prompt_tokens} />
              </td>
              <td className="num">
                <Num value={total.completion_tokens} />
              </td>
              <td className="num">
                <Num value={total.cached_tokens} />
              </td>
              <td className="num">
                <Num value={total.reasoning_tokens} />
              </td>
              <td className="num">
                <Num value={total.total_tokens} />
              </td>
              <td className="num">{usd(total.cost_usd)}</td>
            </tr>
          </tfoot>
        )}
      </table>
    </div>
  );
}

function LatencyCard({ summary, t }: { summary?: Schemas['SummaryView']; t: T }) {
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

function QuotaCard({
  quotas,
  teamId,
  teamName,
  isAdmin,
  t,
}: {
  quotas: UseQueryResult<Schemas['QuotasView']>;
  teamId?: number;
  teamName: (id: number) => string;
  isAdmin: boolean;
  t: T;
}) {
  return (
    <section className="card" aria-labelledby="an-quota">
      <h2 id="an-quota">{t('quota_title')}</h2>
      <QueryState query={quotas} isEmpty={(d) => !d.instance && d.teams.length === 0}>
        {(d) => {
          const all = [...(d.instance ? [d.instance] : []), ...d.teams];
          const primary =
            (teamId ? d.teams.find((q) => q.team_id === teamId) : undefined) ??
            (teamId ? undefined : d.instance) ??
            d.teams.find((q) => q.quota_tokens != null) ??
            all[0];
          const scopeName = (q: Schemas['QuotaView']) =>
            q.scope === 'instance' ? t('quota_instance') : t('quota_team', { name: teamName(q.team_id ?? 0) });
          return (
            <>
              {primary && <QuotaDetail q={primary} name={scopeName(primary)} isAdmin={isAdmin} t={t} />}
              {all.length > 1 && (
                <details className="quota-all">
                  <summary>{t('all_quotas')}</summary>
                  <div className="table-wrap">
                    <table>
                      <thead>
                        <tr>
                          <th scope="col">{t('scope')}</th>
                          <th scope="col" className="num">
                            {t('used')}
                          </th>
                          <th scope="col" className="num">
                            {t('quota')}
                          </th>
                          <th scope="col" className="num">
                            %
                          </th>
                        </tr>
                      </thead>
                      <tbody>
                        {all.map((q) => (
                          <tr key={`${q.scope}:${q.team_id ?? ''}`}>
                            <th scope="row">{scopeName(q)}</th>
                            <td className="num">
                              <Num value={q.used_tokens} />
                            </td>
                            <td className="num">{q.quota_tokens == null ? '—' : <Num value={q.quota_tokens} />}</td>
                            <td className="num">{q.usage_percent == null ? '—' : percent(q.usage_percent / 100)}</td>
                          </tr>
                        ))}
                      </tbody>
                    </table>
                  </div>
                </details>
              )}
            </>
          );
        }}
      </QueryState>
    </section>
  );
}

function QuotaDetail({ q, name, isAdmin, t }: { q: Schemas['QuotaView']; name: string; isAdmin: boolean; t: T }) {
  const period = q.period === 'total' ? t('period_total') : t('period_month', { date: date(q.period_start) });
  if (q.quota_tokens == null) {
    return (
      <div className="quota-none">
        <p className="quota-scope muted">{name}</p>
        <p>
          <strong>{t('no_quota')}</strong>
        </p>
        <p className="muted">{t('no_quota_hint', { used: compact(q.used_tokens) })}</p>
        <p className="muted small-text">{period}</p>
        {isAdmin && <Link to="/settings">{t('set_quota')}</Link>}
      </div>
    );
  }
  const ratio = q.quota_tokens > 0 ? q.used_tokens / q.quota_tokens : 0;
  return (
    <div>
      <p className="quota-scope muted">{name}</p>
      <Gauge
        ratio={ratio}
        label={`${t('quota_gauge')}: ${name}`}
        caption={
          <>
            <strong>{percent((q.usage_percent ?? ratio * 100) / 100)}</strong>
            <span className="muted">{t('of_quota', { used: compact(q.used_tokens), quota: compact(q.quota_tokens) })}</span>
          </>
        }
      />
      <dl className="details quota-details">
        <dt>{t('remaining')}</dt>
        <dd>{integer(q.remaining_tokens)}</dd>
        <dt>{t('used')}</dt>
        <dd>{integer(q.used_tokens)}</dd>
        <dt>{t('quota')}</dt>
        <dd>{integer(q.quota_tokens)}</dd>
        <dt>{t('period')}</dt>
        <dd>{period}</dd>
        <dt>{t('calls_in_period')}</dt>
        <dd>{integer(q.calls)}</dd>
      </dl>
    </div>
  );
}

const DATASETS: ExportDataset[] = ['events', 'series', 'top_key', 'top_route', 'top_model', 'top_team'];

function ExportMenu({ filters, disabled, t }: { filters: AnalyticsFilters; disabled: boolean; t: T }): ReactNode {
  const [open, setOpen] = useState(false);
  const [dataset, setDataset] = useState<ExportDataset>('events');
  const [format, setFormat] = useState<ExportFormat>('csv');
  // The window is taken when the menu opens, so a preset ends "now" at that moment.
  const [openedAt, setOpenedAt] = useState(() => Date.now());
  const root = useRef<HTMLDivElement>(null);
  const button = useRef<HTMLButtonElement>(null);
  const panelId = useId();
  useEffect(() => {
    if (!open) return;
    const outside = (e: MouseEvent) => {
      if (root.current && !root.current.contains(e.target as Node)) setOpen(false);
    };
    document.addEventListener('mousedown', outside);
    return () => document.removeEventListener('mousedown', outside);
  }, [open]);
  const href = exportHref(filters, dataset, format, openedAt);
  const file = `tollgate-${dataset === 'events' ? 'events' : dataset === 'series' ? 'series' : 'top'}.${format}`;
  return (
    <div
      className="menu export-menu"
      ref={root}
      onKeyDown={(e) => {
        if (e.key === 'Escape' && open) {
          e.stopPropagation();
          setOpen(false);
          button.current?.focus();
        }
      }}
    >
      <button
        type="button"
        ref={button}
        aria-expanded={open}
        aria-controls={panelId}
        disabled={disabled}
        onClick={() => {
          if (!open) setOpenedAt(Date.now());
          setOpen(!open);
        }}
      >
        {t('export')} <span aria-hidden="true">▾</span>
      </button>
      {open && (
        <div className="menu-panel card" id={panelId} role="group" aria-label={t('export')}>
          <p className="muted small-text menu-desc">{t('export_desc')}</p>
          <label className="field">
            <span>{t('dataset')}</span>
            <select value={dataset} onChange={(e) => setDataset(e.target.value as ExportDataset)}>
              {DATASETS.map((d) => (
                <option key={d} value={d}>
                  {t(`dataset_${d}`)}
                </option>
              ))}
            </select>
          </label>
          <div className="field">
            <span aria-hidden="true">{t('format')}</span>
            <Segmented
              label={t('format')}
              value={format}
              options={EXPORT_FORMATS.map((f) => ({ value: f, label: f.toUpperCase() }))}
              onChange={setFormat}
            />
          </div>
          {dataset === 'events' && <p className="muted small-text">{t('events_hint')}</p>}
          {dataset !== 'events' && filters.status_class && <p className="alert warning">{t('status_filter_hint')}</p>}
          <a className="button primary" href={href} download={file} onClick={() => setTimeout(() => setOpen(false), 0)}>
            {t('download')}
          </a>
        </div>
      )}
    </div>
  );
}
