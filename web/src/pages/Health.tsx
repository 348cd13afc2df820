// System health from `/health/detailed`: the overall status and each component (store round trip,
// key cache, usage writer backlog, spool), refreshed every 30 seconds and on demand.
import { useEffect, useRef, useState } from 'react';
import { useQuery } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { ApiError, client, toApiError } from '../api/client';
import { defineMessages } from '../i18n';
import { TrendChart } from '../components/charts';
import { ErrorState, Loading, PageHeader } from '../components/ui';
import { dateTime, integer, millis } from '../format';

const ns = defineMessages(
  'health',
  {
    title: 'System health',
    subtitle: 'The store, key cache, usage writer and spool of this console, checked every 30 seconds.',
    refresh: 'Refresh now',
    refreshing: 'Refreshing…',
    auto_refresh: 'Auto-refresh every 30 s',
    updated_at: 'Updated {{time}}',
    status_ok: 'Operational',
    status_degraded: 'Degraded',
    status_down: 'Down',
    overall_ok: 'All systems operational',
    overall_degraded: 'Some components need attention',
    overall_down: 'The console cannot reach its store',
    version: 'Version',
    uptime: 'Uptime',
    components: 'Components',
    component_store: 'Store',
    component_store_desc: 'The database: a round trip to it.',
    component_key_cache: 'Key cache',
    component_key_cache_desc: 'Keys and routes the gateway holds in memory.',
    component_usage_writer: 'Usage writer',
    component_usage_writer_desc: 'The queue of usage events waiting to be written.',
    component_spool: 'Spool',
    component_spool_desc: 'Usage events kept on disk while the store is slow or down.',
    figure_backend: 'Backend',
    figure_round_trip_ms: 'Round trip',
    figure_entries: 'Cached keys',
    figure_routes: 'Routes',
    figure_queue_depth: 'Queue depth',
    figure_dropped: 'Events lost',
    figure_bytes: 'Size on disk',
    round_trip_title: 'Store round trip',
    round_trip_desc: 'Measured at each check since this page was opened.',
    round_trip_chart: 'Store round trip per check',
    metrics: 'Prometheus metrics',
    metrics_desc: 'Scrape /metrics for the full set of counters and histograms.',
  },
  {
    'zh-CN': {
      title: '系统状态',
      subtitle: '本控制台的存储、密钥缓存、用量写入器与落盘队列，每 30 秒检查一次。',
      refresh: '立即刷新',
      refreshing: '刷新中…',
      auto_refresh: '每 30 秒自动刷新',
      updated_at: '更新于 {{time}}',
      status_ok: '正常',
      status_degraded: '降级',
      status_down: '故障',
      overall_ok: '所有组件运行正常',
      overall_degraded: '部分组件需要关注',
      overall_down: '控制台无法连接存储',
      version: '版本',
      uptime: '运行时长',
      components: '组件',
      component_store: '存储',
      component_store_desc: '数据库：一次往返的耗时。',
      component_key_cache: '密钥缓存',
      component_key_cache_desc: '网关在内存中保存的密钥与路由。',
      component_usage_writer: '用量写入器',
      component_usage_writer_desc: '等待写入的用量事件队列。',
      component_spool: '落盘队列',
      component_spool_desc: '存储缓慢或不可用时暂存在磁盘上的用量事件。',
      figure_backend: '后端',
      figure_round_trip_ms: '往返耗时',
      figure_entries: '已缓存密钥',
      figure_routes: '路由',
      figure_queue_depth: '队列深度',
      figure_dropped: '丢失事件',
      figure_bytes: '磁盘占用',
      round_trip_title: '存储往返耗时',
      round_trip_desc: '自打开本页以来每次检查的测量值。',
      round_trip_chart: '每次检查的存储往返耗时',
      metrics: 'Prometheus 指标',
      metrics_desc: '抓取 /metrics 可获得全部计数器与直方图。',
    },
    'zh-TW': {
      title: '系統狀態',
      subtitle: '本控制台的儲存、金鑰快取、用量寫入器與磁碟佇列，每 30 秒檢查一次。',
      refresh: '立即重新整理',
      refreshing: '重新整理中…',
      auto_refresh: '每 30 秒自動重新整理',
      updated_at: '更新於 {{time}}',
      status_ok: '正常',
      status_degraded: '降級',
      status_down: '故障',
      overall_ok: '所有元件運作正常',
      overall_degraded: '部分元件需要留意',
      overall_down: '控制台無法連線至儲存',
      version: '版本',
      uptime: '運作時間',
      components: '元件',
      component_store: '儲存',
      component_store_desc: '資料庫：一次往返的耗時。',
      component_key_cache: '金鑰快取',
      component_key_cache_desc: '閘道在記憶體中保存的金鑰與路由。',
      component_usage_writer: '用量寫入器',
      component_usage_writer_desc: '等待寫入的用量事件佇列。',
      component_spool: '磁碟佇列',
      component_spool_desc: '儲存緩慢或無法使用時暫存在磁碟上的用量事件。',
      figure_backend: '後端',
      figure_round_trip_ms: '往返耗時',
      figure_entries: '已快取金鑰',
      figure_routes: '路由',
      figure_queue_depth: '佇列深度',
      figure_dropped: '遺失事件',
      figure_bytes: '磁碟用量',
      round_trip_title: '儲存往返耗時',
      round_trip_desc: '自開啟本頁以來每次檢查的測量值。',
      round_trip_chart: '每次檢查的儲存往返耗時',
      metrics: 'Prometheus 指標',
      metrics_desc: '抓取 /metrics 可取得全部計數器與直方圖。',
    },
  },
);

export const REFRESH_MS = 30_000;
const HISTORY = 30;

export type Status = 'ok' | 'degraded' | 'down';

/**
 * The answer of `/health/detailed`. The OpenAPI document describes this endpoint without a body
 * schema (it is built as free JSON in `health.rs`), so the shape is written out here.
 */
export interface HealthComponent {
  status: Status;
  detail?: string;
  [figure: string]: unknown;
}
export interface HealthReport {
  status: Status;
  version: string;
  uptime_seconds: number;
  components: Record<string, HealthComponent>;
}

const KNOWN_COMPONENTS = ['store', 'key_cache', 'usage_writer', 'spool'];
const KNOWN_FIGURES = ['backend', 'round_trip_ms', 'entries', 'routes', 'queue_depth', 'dropped', 'bytes'];

/** Status → badge/banner tone. */
export function statusTone(status: string): 'success' | 'warning' | 'danger' {
  return status === 'ok' ? 'success' : status === 'degraded' ? 'warning' : 'danger';
}

/** 93784 s → "1d 2h 3m" in the language's own units (seconds only under a minute). */
export function uptime(seconds: number, lang: string): string {
  const unit = (n: number, u: 'day' | 'hour' | 'minute' | 'second') =>
    new Intl.NumberFormat(lang, { style: 'unit', unit: u, unitDisplay: 'narrow' }).format(n);
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return unit(s, 'second');
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const parts: string[] = [];
  if (d) parts.push(unit(d, 'day'));
  if (h || d) parts.push(unit(h, 'hour'));
  parts.push(unit(m, 'minute'));
  return parts.join(' ');
}

/** 1536 → "1.5 kB". */
export function bytes(n: number, lang: string): string {
  const units = ['byte', 'kilobyte', 'megabyte', 'gigabyte', 'terabyte'] as const;
  let v = Math.max(0, n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return new Intl.NumberFormat(lang, {
    style: 'unit',
    unit: units[i],
    unitDisplay: i ? 'short' : 'long',
    maximumFractionDigits: i ? 1 : 0,
  }).format(v);
}

/** A component's figure for people: times in ms, sizes in bytes, counts as integers. */
export function formatFigure(name: string, value: unknown, lang: string): string {
  if (typeof value === 'number') {
    if (name.endsWith('_ms')) return millis(value, lang);
    if (name === 'bytes' || name.endsWith('_bytes')) return bytes(value, lang);
    return integer(value, lang);
  }
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

/** Reads the report; a 503 still carries one (the store is down), so it is not an error here. */
export async function fetchHealth(): Promise<HealthReport> {
  let result;
  try {
    result = await client.GET('/health/detailed', { parseAs: 'json' });
  } catch {
    throw new ApiError(0, 'network', 'The console could not be reached.');
  }
  const body = (result.data ?? result.error) as unknown;
  if (body && typeof body === 'object' && 'status' in body && 'components' in body) {
    return body as HealthReport;
  }
  throw toApiError(result.response.status, body);
}

export default function Health() {
  const { t, i18n } = useTranslation(ns);
  const lang = i18n.language;
  const [auto, setAuto] = useState(true);
  const query = useQuery({
    queryKey: ['health', 'detailed'],
    queryFn: fetchHealth,
    refetchInterval: auto ? REFRESH_MS : false,
    staleTime: 0,
    retry: false,
  });

  // Round-trip samples of this session, one per successful check.
  const [samples, setSamples] = useState<{ at: number; ms: number }[]>([]);
  const lastSample = useRef(0);
  useEffect(() => {
    const rt = query.data?.components.store?.round_trip_ms;
    if (typeof rt !== 'number' || query.dataUpdatedAt === lastSample.current) return;
    lastSample.current = query.dataUpdatedAt;
    setSamples((list) => [...list, { at: query.dataUpdatedAt, ms: rt }].slice(-HISTORY));
  }, [query.data, query.dataUpdatedAt]);

  const report = query.data;
  const components = report
    ? [
        ...KNOWN_COMPONENTS.filter((c) => c in report.components),
        ...Object.keys(report.components).filter((c) => !KNOWN_COMPONENTS.includes(c)),
      ]
    : [];
  const timeLabel = (ms: number) => new Intl.DateTimeFormat(lang, { timeStyle: 'medium' }).format(ms);

  return (
    <div className="stack insights health-page">
      <PageHeader title={t('title')} subtitle={t('subtitle')}>
        <div className="row health-controls">
          <span className="muted" aria-live="polite">
            {query.dataUpdatedAt > 0 && t('updated_at', { time: dateTime(query.dataUpdatedAt) })}
          </span>
          <label className="row health-auto">
            <input type="checkbox" checked={auto} onChange={(e) => setAuto(e.target.checked)} />
            {t('auto_refresh')}
          </label>
          <button type="button" onClick={() => void query.refetch()} disabled={query.isFetching}>
            {query.isFetching ? t('refreshing') : t('refresh')}
          </button>
        </div>
      </PageHeader>

      {query.isPending ? (
        <Loading />
      ) : query.isError && !report ? (
        <ErrorState error={query.error} onRetry={() => void query.refetch()} />
      ) : (
        report && (
          <>
            {query.isError && <ErrorState error={query.error} />}
            <section
              className={`card health-overall ${statusTone(report.status)}`}
              aria-labelledby="health-overall"
            >
              <span className={`health-dot ${statusTone(report.status)}`} aria-hidden="true" />
              <div>
                <h2 id="health-overall">{t(`overall_${report.status}`)}</h2>
                <span className={`badge ${statusTone(report.status)}`}>{t(`status_${report.status}`)}</span>
              </div>
              <span className="spacer" />
              <dl className="health-meta">
                <div>
                  <dt>{t('version')}</dt>
                  <dd className="mono">{report.version}</dd>
                </div>
                <div>
                  <dt>{t('uptime')}</dt>
                  <dd>{uptime(report.uptime_seconds, lang)}</dd>
                </div>
              </dl>
            </section>

            <section aria-labelledby="health-components">
              <h2 id="health-components" className="sr-only">
                {t('components')}
              </h2>
              <div className="grid cards health-components">
                {components.map((name) => (
                  <ComponentCard key={name} name={name} c={report.components[name]} lang={lang} />
                ))}
              </div>
            </section>

            <div className="grid two">
              <section className="card" aria-labelledby="health-rt">
                <h2 id="health-rt">{t('round_trip_title')}</h2>
                <p className="muted small-text">{t('round_trip_desc')}</p>
                {samples.length < 2 ? (
                  <p className="health-rt-now">{millis(samples[0]?.ms)}</p>
                ) : (
                  <TrendChart
                    label={t('round_trip_chart')}
                    height={160}
                    labels={samples.map((s) => timeLabel(s.at))}
                    series={[{ label: t('figure_round_trip_ms'), data: samples.map((s) => Math.round(s.ms * 100) / 100) }]}
                    formatLeft={(n) => millis(n, lang)}
                  />
                )}
              </section>
              <section className="card" aria-labelledby="health-metrics">
                <h2 id="health-metrics">{t('metrics')}</h2>
                <p className="muted">{t('metrics_desc')}</p>
                <a href="/metrics" target="_blank" rel="noreferrer" className="mono">
                  /metrics
                </a>
              </section>
            </div>
          </>
        )
      )}
    </div>
  );
}

function ComponentCard({ name, c, lang }: { name: string; c: HealthComponent; lang: string }) {
  const { t } = useTranslation(ns);
  const known = KNOWN_COMPONENTS.includes(name);
  const figures = Object.entries(c).filter(([k]) => k !== 'status' && k !== 'detail');
  const tone = statusTone(c.status);
  const id = `health-c-${name}`;
  return (
    <section className={`card health-component ${tone}`} aria-labelledby={id}>
      <div className="health-component-head">
        <span className={`health-dot ${tone}`} aria-hidden="true" />
        <h3 id={id}>{known ? t(`component_${name}`) : name}</h3>
        <span className={`badge ${tone}`}>{t(`status_${c.status}`, { defaultValue: c.status })}</span>
      </div>
      {known && <p className="muted small-text">{t(`component_${name}_desc`)}</p>}
      {c.detail && (
        <div className={`alert ${tone === 'danger' ? 'error' : 'warning'}`} role="status">
          {c.detail}
        </div>
      )}
      {figures.length > 0 && (
        <dl className="details">
          {figures.map(([k, v]) => (
            <div key={k} className="health-figure">
              <dt>{KNOWN_FIGURES.includes(k) ? t(`figure_${k}`) : k}</dt>
              <dd>{formatFigure(k, v, lang)}</dd>
            </div>
          ))}
        </dl>
      )}
    </section>
  );
}
