// Audit log (/audit): every change, sign-in and setting change the caller may see (instance admins
// all; team owners and admins their teams'; everyone their own), filtered from the URL, in pages
// of 50, with a CSV download of the whole filtered log (`GET /api/v1/audit?format=csv`).
import { useEffect, useState } from 'react';
import { useSearchParams } from 'react-router';
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { client, downloadUrl, unwrap } from '../api/client';
import { defineMessages } from '../i18n';
import { dateTime, relative } from '../format';
import { fromLocalInput, toLocalInput } from '../localTime';
import { Pager, QueryState } from '../components/ui';

const ns = defineMessages(
  'audit',
  {
    title: 'Audit log',
    intro: 'Every change, sign-in and setting change, newest first. You see the entries of the teams you manage and your own; instance admins see everything.',
    action: 'Action',
    entity_type: 'Entity type',
    actor: 'Actor',
    actor_placeholder: 'user:alice@example.com',
    from: 'From',
    to: 'To',
    any: 'Any',
    last_24h: 'Last 24 hours',
    last_7d: 'Last 7 days',
    last_30d: 'Last 30 days',
    clear: 'Clear filters',
    col_time: 'Time',
    col_actor: 'Actor',
    col_action: 'Action',
    col_entity: 'Entity',
    col_summary: 'Summary',
    col_ip: 'IP address',
    filter_actor: 'Show only entries by {{actor}}',
    filter_action: 'Show only {{action}}',
    no_entries: 'No audit entries match these filters.',
    csv_help: 'The CSV holds every entry matching the filters, not only this page.',
    group_auth: 'Sign-in',
    group_user: 'Users',
    group_team: 'Teams',
    group_member: 'Members',
    group_invitation: 'Invitations',
    group_key: 'API keys',
    group_route: 'Routes',
    group_token: 'Access tokens',
    group_counter: 'Token counters',
    group_setting: 'Settings',
    group_other: 'Other',
    entity_user: 'User',
    entity_team: 'Team',
    entity_member: 'Member',
    entity_invitation: 'Invitation',
    entity_key: 'API key',
    entity_route: 'Route',
    entity_token: 'Access token',
    entity_counter: 'Token counter',
    entity_setting: 'Setting',
  },
  {
    'zh-CN': {
      title: '审计日志',
      intro: '所有变更、登录和设置修改，最新的在前。你可以看到自己管理的团队的记录和你自己的操作；实例管理员可以看到全部。',
      action: '操作',
      entity_type: '对象类型',
      actor: '操作者',
      actor_placeholder: 'user:alice@example.com',
      from: '开始时间',
      to: '结束时间',
      any: '全部',
      last_24h: '最近 24 小时',
      last_7d: '最近 7 天',
      last_30d: '最近 30 天',
      clear: '清除筛选',
      col_time: '时间',
      col_actor: '操作者',
      col_action: '操作',
      col_entity: '对象',
      col_summary: '摘要',
      col_ip: 'IP 地址',
      filter_actor: '只看 {{actor}} 的记录',
      filter_action: '只看 {{action}}',
      no_entries: '没有符合筛选条件的审计记录。',
      csv_help: 'CSV 包含所有符合筛选条件的记录，而不只是当前页。',
      group_auth: '登录',
      group_user: '用户',
      group_team: '团队',
      group_member: '成员',
      group_invitation: '邀请',
      group_key: 'API 密钥',
      group_route: '路由',
      group_token: '访问令牌',
      group_counter: 'Token 计数器',
      group_setting: '设置',
      group_other: '其他',
      entity_user: '用户',
      entity_team: '团队',
      entity_member: '成员',
      entity_invitation: '邀请',
      entity_key: 'API 密钥',
      entity_route: '路由',
      entity_token: '访问令牌',
      entity_counter: 'Token 计数器',
      entity_setting: '设置',
    },
    'zh-TW': {
      title: '稽核日誌',
      intro: '所有變更、登入和設定修改，最新的在前。你可以看到自己管理的團隊的紀錄和你自己的操作；執行個體管理員可以看到全部。',
      action: '操作',
      entity_type: '物件類型',
      actor: '操作者',
      actor_placeholder: 'user:alice@example.com',
      from: '開始時間',
      to: '結束時間',
      any: '全部',
      last_24h: '最近 24 小時',
      last_7d: '最近 7 天',
      last_30d: '最近 30 天',
      clear: '清除篩選',
      col_time: '時間',
      col_actor: '操作者',
      col_action: '操作',
      col_entity: '物件',
      col_summary: '摘要',
      col_ip: 'IP 位址',
      filter_actor: '只看 {{actor}} 的紀錄',
      filter_action: '只看 {{action}}',
      no_entries: '沒有符合篩選條件的稽核紀錄。',
      csv_help: 'CSV 包含所有符合篩選條件的紀錄，而不只是目前頁面。',
      group_auth: '登入',
      group_user: '使用者',
      group_team: '團隊',
      group_member: '成員',
      group_invitation: '邀請',
      group_key: 'API 金鑰',
      group_route: '路由',
      group_token: '存取權杖',
      group_counter: 'Token 計數器',
      group_setting: '設定',
      group_other: '其他',
      entity_user: '使用者',
      entity_team: '團隊',
      entity_member: '成員',
      entity_invitation: '邀請',
      entity_key: 'API 金鑰',
      entity_route: '路由',
      entity_token: '存取權杖',
      entity_counter: 'Token 計數器',
      entity_setting: '設定',
    },
  },
);

/** Actions the server records, grouped by what they concern (crates/tollgate-console/src/api/*.rs). */
export const ACTION_GROUPS: { group: string; actions: string[] }[] = [
  { group: 'auth', actions: ['auth.login', 'auth.login_failed', 'auth.logout'] },
  { group: 'user', actions: ['user.create', 'user.update', 'user.password_change'] },
  { group: 'team', actions: ['team.create', 'team.update', 'team.delete'] },
  { group: 'member', actions: ['member.role_change', 'member.remove'] },
  { group: 'invitation', actions: ['invitation.create', 'invitation.accept', 'invitation.delete'] },
  { group: 'key', actions: ['key.create', 'key.update', 'key.revoke', 'key.reveal', 'key.delete'] },
  { group: 'route', actions: ['route.create', 'route.update', 'route.delete'] },
  { group: 'token', actions: ['token.create', 'token.revoke'] },
  { group: 'counter', actions: ['counter.record', 'counter.import', 'counter.correct', 'counter.delete_reading'] },
  { group: 'setting', actions: ['setting.change'] },
];
export const ENTITY_TYPES = ['user', 'team', 'member', 'invitation', 'key', 'route', 'token', 'counter', 'setting'];

export const PER_PAGE = 50;

/** The filters as they live in the URL: `from` / `to` are `datetime-local` values in the browser's time zone. */
export interface AuditFilters {
  action: string;
  entity_type: string;
  actor: string;
  from: string;
  to: string;
  page: number;
}

const FILTER_KEYS = ['action', 'entity_type', 'actor', 'from', 'to'] as const;

export function filtersFromParams(params: URLSearchParams): AuditFilters {
  const page = Number(params.get('page'));
  return {
    action: params.get('action') ?? '',
    entity_type: params.get('entity_type') ?? '',
    actor: params.get('actor') ?? '',
    from: params.get('from') ?? '',
    to: params.get('to') ?? '',
    page: Number.isInteger(page) && page >= 1 ? page : 1,
  };
}

/** The URL search params of `filters` (empty filters and page 1 left out). */
export function paramsFromFilters(filters: AuditFilters): URLSearchParams {
  const params = new URLSearchParams();
  for (const key of FILTER_KEYS) {
    const v = filters[key].trim();
    if (v) params.set(key, v);
  }
  if (filters.page > 1) params.set('page', String(filters.page));
  return params;
}

type AuditQuery = {
  action?: string;
  entity_type?: string;
  actor?: string;
  from?: number;
  to?: number;
};

/** The API's filter parameters for `filters` (blank ones left out). */
export function auditQuery(filters: AuditFilters): AuditQuery {
  const q: AuditQuery = {};
  if (filters.action.trim()) q.action = filters.action.trim();
  if (filters.entity_type.trim()) q.entity_type = filters.entity_type.trim();
  if (filters.actor.trim()) q.actor = filters.actor.trim();
  const from = fromLocalInput(filters.from);
  const to = fromLocalInput(filters.to);
  if (from !== undefined) q.from = from;
  if (to !== undefined) q.to = to;
  return q;
}

/** The CSV download of everything the filters match (no paging). */
export function csvUrl(filters: AuditFilters): string {
  return downloadUrl('/api/v1/audit', { ...auditQuery(filters), format: 'csv' });
}

/** Badge colour of an action: removals red, failures amber, creations green, other changes blue. */
export function actionTone(action: string): string {
  const verb = action.split('.').pop() ?? action;
  if (verb === 'login_failed' || verb === 'reveal') return 'warning';
  if (['delete', 'revoke', 'remove'].includes(verb)) return 'danger';
  if (['create', 'accept'].includes(verb)) return 'success';
  if (['login', 'logout'].includes(verb)) return '';
  return 'info';
}

export default function AuditPage() {
  const { t } = useTranslation([ns, 'common']);
  const [params, setParams] = useSearchParams();
  const filters = filtersFromParams(params);
  const [actor, setActor] = useState(filters.actor);

  // Keep the actor box in step when the URL changes (back button, "clear", a click on an actor).
  useEffect(() => setActor(filters.actor), [filters.actor]);

  // Any change of filter goes back to the first page.
  const update = (change: Partial<AuditFilters>, replace = false) =>
    setParams((prev) => paramsFromFilters({ ...filtersFromParams(prev), page: 1, ...change }), { replace });

  // The actor is typed: apply it after a short pause (replacing the history entry while typing).
  useEffect(() => {
    if (actor.trim() === filters.actor) return;
    const timer = setTimeout(() => update({ actor: actor.trim() }, true), 500);
    return () => clearTimeout(timer);
  }, [actor]); // eslint-disable-line react-hooks/exhaustive-deps

  const query = auditQuery(filters);
  const entries = useQuery({
    queryKey: ['audit', query, filters.page],
    queryFn: () =>
      unwrap(client.GET('/api/v1/audit', { params: { query: { ...query, page: filters.page, per_page: PER_PAGE } } })),
    placeholderData: keepPreviousData,
  });

  const knownActions = ACTION_GROUPS.flatMap((g) => g.actions);
  const hasFilters = FILTER_KEYS.some((k) => filters[k] !== '');
  const quick = (hours: number) => update({ from: toLocalInput(Date.now() - hours * 3_600_000), to: '' });

  return (
    <>
      <div className="page-header">
        <h1>{t('title')}</h1>
        <span className="spacer" />
        <a className="button" href={csvUrl(filters)} download="tollgate-audit.csv" title={t('csv_help')}>
          {t('common:download_csv')}
        </a>
      </div>
      <p className="muted" style={{ marginTop: 0 }}>
        {t('intro')}
      </p>
      <div className="filters" role="search">
        <label>
          {t('action')}
          <select value={filters.action} onChange={(e) => update({ action: e.target.value })}>
            <option value="">{t('any')}</option>
            {ACTION_GROUPS.map((g) => (
              <optgroup key={g.group} label={t(`group_${g.group}`)}>
                {g.actions.map((a) => (
                  <option key={a} value={a}>
                    {a.slice(a.indexOf('.') + 1)}
                  </option>
                ))}
              </optgroup>
            ))}
            {filters.action && !knownActions.includes(filters.action) && (
              <optgroup label={t('group_other')}>
                <option value={filters.action}>{filters.action}</option>
              </optgroup>
            )}
          </select>
        </label>
        <label>
          {t('entity_type')}
          <select value={filters.entity_type} onChange={(e) => update({ entity_type: e.target.value })}>
            <option value="">{t('any')}</option>
            {ENTITY_TYPES.map((type) => (
              <option key={type} value={type}>
                {t(`entity_${type}`)}
              </option>
            ))}
            {filters.entity_type && !ENTITY_TYPES.includes(filters.entity_type) && (
              <option value={filters.entity_type}>{filters.entity_type}</option>
            )}
          </select>
        </label>
        <label>
          {t('actor')}
          <input
            type="search"
            value={actor}
            placeholder={t('actor_placeholder')}
            onChange={(e) => setActor(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === 'Enter') update({ actor: actor.trim() });
            }}
          />
        </label>
        <label>
          {t('from')}
          <input
            type="datetime-local"
            value={filters.from}
            max={filters.to || undefined}
            onChange={(e) => update({ from: e.target.value })}
          />
        </label>
        <label>
          {t('to')}
          <input
            type="datetime-local"
            value={filters.to}
            min={filters.from || undefined}
            onChange={(e) => update({ to: e.target.value })}
          />
        </label>
        <div className="row" style={{ gap: '0.35rem' }}>
          <button type="button" className="small" onClick={() => quick(24)}>
            {t('last_24h')}
          </button>
          <button type="button" className="small" onClick={() => quick(24 * 7)}>
            {t('last_7d')}
          </button>
          <button type="button" className="small" onClick={() => quick(24 * 30)}>
            {t('last_30d')}
          </button>
          {hasFilters && (
            <button type="button" className="small ghost" onClick={() => setParams(new URLSearchParams())}>
              {t('clear')}
            </button>
          )}
        </div>
      </div>
      <QueryState query={entries} isEmpty={(page) => page.items.length === 0} empty={t('no_entries')}>
        {(page) => (
          <>
            <div className="table-wrap" aria-busy={entries.isFetching}>
              <table>
                <thead>
                  <tr>
                    <th>{t('col_time')}</th>
                    <th>{t('col_actor')}</th>
                    <th>{t('col_action')}</th>
                    <th>{t('col_entity')}</th>
                    <th>{t('col_summary')}</th>
                    <th>{t('col_ip')}</th>
                  </tr>
                </thead>
                <tbody>
                  {page.items.map((e) => (
                    <tr key={e.id}>
                      <td style={{ whiteSpace: 'nowrap' }} title={relative(e.ts)}>
                        {dateTime(e.ts)}
                      </td>
                      <td>
                        <button
                          type="button"
                          className="ghost small mono"
                          style={{ padding: 0, minHeight: 0, color: 'var(--text)' }}
                          title={t('filter_actor', { actor: e.actor })}
                          onClick={() => update({ actor: e.actor })}
                        >
                          {e.actor}
                        </button>
                      </td>
                      <td>
                        <button
                          type="button"
                          className="ghost small"
                          style={{ padding: 0, minHeight: 0 }}
                          title={t('filter_action', { action: e.action })}
                          onClick={() => update({ action: e.action })}
                        >
                          <span className={`badge ${actionTone(e.action)}`}>{e.action}</span>
                        </button>
                      </td>
                      <td style={{ whiteSpace: 'nowrap' }}>
                        {ENTITY_TYPES.includes(e.entity_type) ? t(`entity_${e.entity_type}`) : e.entity_type}
                        {e.entity_id && <span className="muted mono"> #{e.entity_id}</span>}
                      </td>
                      <td style={{ minWidth: '14rem' }}>{e.summary}</td>
                      <td className="mono" style={{ whiteSpace: 'nowrap' }}>
                        {e.ip ?? <span className="muted">—</span>}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <Pager
              page={page.page}
              total={page.total}
              hasNext={page.page * page.per_page < page.total}
              onPage={(p) => update({ page: p })}
            />
          </>
        )}
      </QueryState>
    </>
  );
}
