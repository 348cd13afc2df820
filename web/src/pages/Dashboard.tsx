// The overview: what exists (keys, routes, teams), what needs attention (keys about to expire),
// what changed lately (audit), and a strip of the last 24 hours of traffic with links onwards.
// Every figure is derived here from the `/api/v1` lists the other pages read too (and share the
// cache of), with the same rules as the seed's `/api/dashboard/overview`.
import { useMemo, type ReactNode } from 'react';
import { Link } from 'react-router';
import { useQuery, type UseQueryResult } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { client, unwrap, type Schemas } from '../api/client';
import { useKeys, useRoutes, useTeams, useUsageSummary } from '../api/queries';
import { usePermissions } from '../auth';
import { defineMessages } from '../i18n';
import { BarList, TrendChart } from '../components/charts';
import { ErrorState, Loading, Num, PageHeader, StatCard } from '../components/ui';
import { date, dateTime, integer, millis, percent, relative } from '../format';

const ns = defineMessages(
  'dashboard',
  {
    title: 'Overview',
    subtitle: 'Keys, routes and teams at a glance, and the last 24 hours of traffic.',
    last_24h: 'Last 24 hours',
    calls: 'Calls',
    success_rate: 'Success rate',
    tokens: 'Tokens',
    p95: 'p95 latency',
    errors_n: '{{count}} errors',
    open_analytics: 'Usage analytics',
    open_logs: 'Call logs',
    open_keys: 'API keys',
    no_traffic: 'No calls in the last 24 hours.',
    keys: 'API keys',
    keys_active: '{{count}} active',
    routes: 'Routes',
    teams: 'Teams',
    expiring: 'Expiring within 30 days',
    expiring_none: 'None',
    expiring_some: 'Renew or replace them',
    key_trend: 'Keys created',
    key_trend_desc: 'Per day over the last 7 days (UTC days).',
    key_trend_chart: 'Keys created per day over the last 7 days',
    keys_created: 'Keys created',
    team_dist: 'Keys per team',
    team_dist_desc: 'The 5 teams with the most keys.',
    team_dist_chart: 'Number of keys per team',
    no_keys: 'No keys yet.',
    create_key: 'Create a key',
    expiring_keys: 'Keys expiring soon',
    expiring_keys_none: 'No key expires in the next 30 days.',
    key: 'Key',
    team: 'Team',
    expires: 'Expires',
    more: 'and {{count}} more',
    manage_keys: 'Manage keys',
    activity: 'Recent activity',
    activity_none: 'Nothing has happened yet.',
    audit_log: 'Audit log',
    when: 'When',
    who: 'Who',
    what: 'What',
  },
  {
    'zh-CN': {
      title: '总览',
      subtitle: '密钥、路由与团队一览，以及最近 24 小时的流量。',
      last_24h: '最近 24 小时',
      calls: '调用次数',
      success_rate: '成功率',
      tokens: 'Token',
      p95: 'p95 延迟',
      errors_n: '{{count}} 次错误',
      open_analytics: '用量分析',
      open_logs: '调用日志',
      open_keys: 'API 密钥',
      no_traffic: '最近 24 小时没有调用。',
      keys: 'API 密钥',
      keys_active: '{{count}} 个有效',
      routes: '路由',
      teams: '团队',
      expiring: '30 天内到期',
      expiring_none: '无',
      expiring_some: '请续期或替换',
      key_trend: '新建密钥',
      key_trend_desc: '最近 7 天每天的数量（UTC 日）。',
      key_trend_chart: '最近 7 天每天新建的密钥数',
      keys_created: '新建密钥',
      team_dist: '各团队密钥数',
      team_dist_desc: '密钥最多的 5 个团队。',
      team_dist_chart: '各团队的密钥数量',
      no_keys: '还没有密钥。',
      create_key: '创建密钥',
      expiring_keys: '即将到期的密钥',
      expiring_keys_none: '未来 30 天内没有到期的密钥。',
      key: '密钥',
      team: '团队',
      expires: '到期时间',
      more: '还有 {{count}} 个',
      manage_keys: '管理密钥',
      activity: '最近动态',
      activity_none: '暂无动态。',
      audit_log: '审计日志',
      when: '时间',
      who: '操作者',
      what: '内容',
    },
    'zh-TW': {
      title: '總覽',
      subtitle: '金鑰、路由與團隊一覽，以及最近 24 小時的流量。',
      last_24h: '最近 24 小時',
      calls: '呼叫次數',
      success_rate: '成功率',
      tokens: 'Token',
      p95: 'p95 延遲',
      errors_n: '{{count}} 次錯誤',
      open_analytics: '用量分析',
      open_logs: '呼叫日誌',
      open_keys: 'API 金鑰',
      no_traffic: '最近 24 小時沒有呼叫。',
      keys: 'API 金鑰',
      keys_active: '{{count}} 個有效',
      routes: '路由',
      teams: '團隊',
      expiring: '30 天內到期',
      expiring_none: '無',
      expiring_some: '請續期或更換',
      key_trend: '新建金鑰',
      key_trend_desc: '最近 7 天每天的數量（UTC 日）。',
      key_trend_chart: '最近 7 天每天新建的金鑰數',
      keys_created: '新建金鑰',
      team_dist: '各團隊金鑰數',
      team_dist_desc: '金鑰最多的 5 個團隊。',
      team_dist_chart: '各團隊的金鑰數量',
      no_keys: '還沒有金鑰。',
      create_key: '建立金鑰',
      expiring_keys: '即將到期的金鑰',
      expiring_keys_none: '未來 30 天內沒有到期的金鑰。',
      key: '金鑰',
      team: '團隊',
      expires: '到期時間',
      more: '還有 {{count}} 個',
      manage_keys: '管理金鑰',
      activity: '最近動態',
      activity_none: '尚無動態。',
      audit_log: '稽核日誌',
      when: '時間',
      who: '操作者',
      what: '內容',
    },
  },
);

const DAY_MS = 86_400_000;
const EXPIRING_SHOWN = 8;
/** Audit entries in "recent activity". */
const ACTIVITY_SHOWN = 10;

/** `user:ann@example.com` → `ann@example.com`; other actors (system, tokens) as they are. */
export function actorName(actor: string): string {
  return actor.startsWith('user:') ? actor.slice(5) : actor;
}

/** How urgent an expiry is: within a week is a warning, past is danger. */
export function expiryTone(expiresAt: number | null | undefined, now: number): 'danger' | 'warning' | 'info' {
  if (expiresAt == null) return 'info';
  if (expiresAt <= now) return 'danger';
  return expiresAt - now <= 7 * DAY_MS ? 'warning' : 'info';
}

/** What the overview shows: the same figures as the seed's `/api/dashboard/overview`. */
export interface Overview {
  total_keys: number;
  /** Not revoked and not expired. */
  active_keys: number;
  total_routes: number;
  total_teams: number;
  /** Active keys expiring within 30 days. */
  expiring_soon: number;
  /** Keys created on each of the last 7 UTC days, oldest first. */
  key_creation_trend: { ts: number; count: number }[];
  /** The 5 teams with the most keys (teams without keys left out). */
  team_key_distribution: { team_id: number; team: string; keys: number }[];
  /** Active keys expiring within 30 days, soonest first. */
  expiring_keys: Schemas['KeyView'][];
  /** The latest audit entries the caller may read. */
  recent_activity: Schemas['AuditView'][];
}

/** Derives the overview from the lists the caller can see (the API already scoped them). */
export function overviewOf(
  keys: Schemas['KeyView'][],
  routes: Schemas['RouteView'][],
  teams: Schemas['TeamView'][],
  activity: Schemas['AuditView'][],
  now: number,
): Overview {
  const active = keys.filter((k) => k.revoked_at == null && (k.expires_at == null || k.expires_at > now));
  const expiring = active
    .filter((k) => k.expires_at != null && k.expires_at <= now + 30 * DAY_MS)
    .sort((a, b) => (a.expires_at ?? 0) - (b.expires_at ?? 0));
  const today = now - (now % DAY_MS);
  const trend = [6, 5, 4, 3, 2, 1, 0].map((d) => {
    const ts = today - d * DAY_MS;
    return { ts, count: keys.filter((k) => k.created_at >= ts && k.created_at < ts + DAY_MS).length };
  });
  const dist = teams
    .map((t) => ({ team_id: t.id, team: t.name, keys: keys.filter((k) => k.team_id === t.id).length }))
    .filter((t) => t.keys > 0)
    .sort((a, b) => b.keys - a.keys || (a.team < b.team ? -1 : a.team > b.team ? 1 : 0))
    .slice(0, 5);
  return {
    total_keys: keys.length,
    active_keys: active.length,
    total_routes: routes.length,
    total_teams: teams.length,
    expiring_soon: expiring.length,
    key_creation_trend: trend,
    team_key_distribution: dist,
    expiring_keys: expiring,
    recent_activity: activity,
  };
}

export default function Dashboard() {
  const { t, i18n } = useTranslation(ns);
  const can = usePermissions();
  const keys = useKeys();
  const routes = useRoutes();
  const teams = useTeams();
  const audit = useQuery({
    queryKey: ['audit', 'recent', ACTIVITY_SHOWN],
    queryFn: () => unwrap(client.GET('/api/v1/audit', { params: { query: { per_page: ACTIVITY_SHOWN } } })),
  });
  const usage = useUsageSummary({ range: '24h' });
  const lang = i18n.language;
  const parts = [keys, routes, teams, audit];
  const failed = parts.find((q) => q.isError);
  const overview = useMemo(
    () =>
      keys.data && routes.data && teams.data && audit.data
        ? overviewOf(keys.data, routes.data, teams.data, audit.data.items, Date.now())
        : null,
    [keys.data, routes.data, teams.data, audit.data],
  );

  return (
    <div className="stack insights dashboard">
      <PageHeader title={t('title')} subtitle={t('subtitle')} />

      <UsageStrip query={usage} />

      {failed ? (
        <ErrorState
          error={failed.error}
          onRetry={() => parts.filter((q) => q.isError).forEach((q) => void q.refetch())}
        />
      ) : overview === null ? (
        <Loading />
      ) : (
        <OverviewBody data={overview} canCreateKeys={can.keyTeams.length > 0} lang={lang} />
      )}
    </div>
  );
}

function UsageStrip({ query }: { query: UseQueryResult<Schemas['SummaryView']> }) {
  const { t } = useTranslation(ns);
  const s = query.data;
  return (
    <section className="card usage-strip" aria-labelledby="dash-24h">
      <div className="usage-strip-head">
        <h2 id="dash-24h">{t('last_24h')}</h2>
        <nav className="row usage-strip-links" aria-label={t('last_24h')}>
          <Link to="/analytics?range=24h">{t('open_analytics')} →</Link>
          <Link to="/logs">{t('open_logs')} →</Link>
          <Link to="/keys">{t('open_keys')} →</Link>
        </nav>
      </div>
      {query.isPending ? (
        <Loading />
      ) : query.isError ? (
        <ErrorState error={query.error} onRetry={() => void query.refetch()} />
      ) : s && s.calls === 0 ? (
        <p className="muted">{t('no_traffic')}</p>
      ) : (
        s && (
          <dl className="usage-strip-stats">
            <div>
              <dt>{t('calls')}</dt>
              <dd>
                <Num value={s.calls} />
              </dd>
            </div>
            <div>
              <dt>{t('success_rate')}</dt>
              <dd>
                <span className={s.success_rate < 0.95 ? 'tone-warning' : 'tone-success'}>{percent(s.success_rate)}</span>
                {s.errors > 0 && <small className="muted"> {t('errors_n', { count: s.errors })}</small>}
              </dd>
            </div>
            <div>
              <dt>{t('tokens')}</dt>
              <dd>
                <Num value={s.total_tokens} />
              </dd>
            </div>
            <div>
              <dt>{t('p95')}</dt>
              <dd>{millis(s.p95_latency_ms)}</dd>
            </div>
          </dl>
        )
      )}
    </section>
  );
}

function OverviewBody({ data, canCreateKeys, lang }: { data: Overview; canCreateKeys: boolean; lang: string }) {
  const { t } = useTranslation(ns);
  const now = Date.now();
  const dayLabel = (ts: number) => new Intl.DateTimeFormat(lang, { month: 'short', day: 'numeric', timeZone: 'UTC' }).format(ts);
  const expiring = data.expiring_keys.slice(0, EXPIRING_SHOWN);
  return (
    <>
      <div className="grid cards">
        <StatCard
          label={t('keys')}
          value={integer(data.total_keys)}
          hint={
            <Link to="/keys" aria-label={`${t('keys')}: ${t('keys_active', { count: data.active_keys })}`}>
              {t('keys_active', { count: data.active_keys })}
            </Link>
          }
        />
        <StatCard label={t('routes')} value={integer(data.total_routes)} hint={<Link to="/routes">{t('routes')} →</Link>} />
        <StatCard label={t('teams')} value={integer(data.total_teams)} hint={<Link to="/teams">{t('teams')} →</Link>} />
        <StatCard
          label={t('expiring')}
          value={<span className={data.expiring_soon > 0 ? 'tone-warning' : undefined}>{integer(data.expiring_soon)}</span>}
          hint={data.expiring_soon > 0 ? t('expiring_some') : t('expiring_none')}
        />
      </div>

      <div className="grid two">
        <section className="card" aria-labelledby="dash-key-trend">
          <h2 id="dash-key-trend">{t('key_trend')}</h2>
          <p className="muted small-text">{t('key_trend_desc')}</p>
          <TrendChart
            label={t('key_trend_chart')}
            height={200}
            labels={data.key_creation_trend.map((d) => dayLabel(d.ts))}
            series={[{ label: t('keys_created'), data: data.key_creation_trend.map((d) => d.count), kind: 'bar' }]}
            formatLeft={(n) => (Number.isInteger(n) ? integer(n) : '')}
          />
        </section>
        <section className="card" aria-labelledby="dash-team-dist">
          <h2 id="dash-team-dist">{t('team_dist')}</h2>
          <p className="muted small-text">{t('team_dist_desc')}</p>
          {data.team_key_distribution.length === 0 ? (
            <div className="state empty">
              <p>{t('no_keys')}</p>
              {canCreateKeys && <Link to="/keys">{t('create_key')}</Link>}
            </div>
          ) : (
            <BarList
              label={t('team_dist_chart')}
              items={data.team_key_distribution.map((d) => ({ label: d.team, value: d.keys }))}
              format={(n) => (Number.isInteger(n) ? integer(n) : '')}
            />
          )}
        </section>
      </div>

      <div className="grid two">
        <section className="card" aria-labelledby="dash-expiring">
          <div className="card-head">
            <h2 id="dash-expiring">{t('expiring_keys')}</h2>
            <Link to="/keys">{t('manage_keys')} →</Link>
          </div>
          {expiring.length === 0 ? (
            <div className="state empty">{t('expiring_keys_none')}</div>
          ) : (
            <>
              <div className="table-wrap">
                <table>
                  <thead>
                    <tr>
                      <th scope="col">{t('key')}</th>
                      <th scope="col">{t('team')}</th>
                      <th scope="col">{t('expires')}</th>
                    </tr>
                  </thead>
                  <tbody>
                    {expiring.map((k) => (
                      <tr key={k.id}>
                        <th scope="row" className="name-cell">
                          {k.name}
                          <div className="mono muted small-mono">{k.prefix}</div>
                        </th>
                        <td>{k.team}</td>
                        <td>
                          <span className={`badge ${expiryTone(k.expires_at, now)}`} title={dateTime(k.expires_at)}>
                            {relative(k.expires_at, now)}
                          </span>
                          <div className="muted small-mono">{date(k.expires_at)}</div>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
              {data.expiring_keys.length > EXPIRING_SHOWN && (
                <p className="muted">{t('more', { count: data.expiring_keys.length - EXPIRING_SHOWN })}</p>
              )}
            </>
          )}
        </section>

        <section className="card" aria-labelledby="dash-activity">
          <div className="card-head">
            <h2 id="dash-activity">{t('activity')}</h2>
            <Link to="/audit">{t('audit_log')} →</Link>
          </div>
          <ActivityList items={data.recent_activity} now={now} />
        </section>
      </div>
    </>
  );
}

function ActivityList({ items, now }: { items: Schemas['AuditView'][]; now: number }) {
  const { t } = useTranslation(ns);
  return (
    <QueryStateless empty={items.length === 0} text={t('activity_none')}>
      <ol className="activity" aria-label={t('activity')}>
        {items.map((a) => (
          <li key={a.id}>
            <time dateTime={new Date(a.ts).toISOString()} title={dateTime(a.ts)} className="muted">
              {relative(a.ts, now)}
            </time>
            <div className="activity-body">
              <div>
                <span className="activity-actor">{actorName(a.actor)}</span>{' '}
                <span className="badge mono">{a.action}</span>
              </div>
              <div className="muted">{a.summary}</div>
            </div>
          </li>
        ))}
      </ol>
    </QueryStateless>
  );
}

/** An empty state for data that is already loaded. */
function QueryStateless({ empty, text, children }: { empty: boolean; text: string; children: ReactNode }) {
  return empty ? <div className="state empty">{text}</div> : <>{children}</>;
}
