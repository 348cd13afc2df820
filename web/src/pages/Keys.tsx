// API keys: the masked list, and — for those allowed — create (the secret shown once), edit,
// revoke, delete and reveal. Owners and admins manage every key of their team; members manage the
// keys they created; viewers only read. The server checks all of it again.
import { useEffect, useId, useMemo, useState, type FormEvent, type ReactNode } from 'react';
import { useSearchParams } from 'react-router';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { ApiError, client, unwrap, type Schemas } from '../api/client';
import { useKeys, useRoutes, useTeams } from '../api/queries';
import { useAuth, usePermissions, type Permissions } from '../auth';
import { defineMessages } from '../i18n';
import {
  ConfirmAction,
  Dialog,
  Empty,
  ErrorAlert,
  ErrorState,
  Field,
  FormButtons,
  Loading,
  PageHeader,
  SecretValue,
  Segmented,
  TeamOptions,
  focusFirstInvalid,
  useToast,
} from '../components/ui';
import { date, dateTime, integer, relative } from '../format';
import { localDay } from '../localTime';

const ns = defineMessages(
  'keys',
  {
    title: 'API keys',
    subtitle: 'Keys let scripts, workflows and services call routes through the gateway. Only a masked prefix is kept in view.',
    create_key: 'Create key',
    create_title: 'Create API key',
    filter: 'Filter',
    filter_placeholder: 'Name, prefix or description',
    team: 'Team',
    status: 'Status',
    status_active: 'Active',
    status_expired: 'Expired',
    status_revoked: 'Revoked',
    col_name: 'Name',
    col_key: 'Key',
    col_team: 'Team',
    col_status: 'Status',
    col_created: 'Created',
    col_last_used: 'Last used',
    col_routes: 'Routes',
    col_actions: 'Actions',
    never_used: 'Never used',
    no_expiry: 'No expiry',
    expires_on: 'Expires {{date}}',
    expired_on: 'Expired {{date}}',
    revoked_on: 'Revoked {{date}}',
    all_routes: 'All routes',
    no_routes: 'No routes',
    more_routes: '+{{count}} more',
    created_by: 'Created by {{who}}',
    empty: 'No keys yet.',
    empty_create: 'Create a key to let a script or service call the gateway.',
    empty_filtered: 'No keys match the filters.',
    edit: 'Edit',
    edit_label: 'Edit {{name}}',
    revoke: 'Revoke',
    revoke_label: 'Revoke {{name}}',
    delete: 'Delete',
    delete_label: 'Delete {{name}}',
    reveal: 'Reveal',
    reveal_label: 'Reveal {{name}}',
    name: 'Name',
    name_help: 'What uses it, e.g. "n8n production".',
    description: 'Description',
    expiry: 'Expiry',
    expiry_never: 'No expiry',
    expiry_days: 'In {{count}} days',
    expiry_date: 'On a date…',
    expiry_on: 'Expiry date',
    expiry_at: 'Expires {{when}}',
    expiry_future: 'Pick a date in the future.',
    routes: 'Allowed routes',
    routes_all: 'All of the team’s routes and the shared routes',
    routes_some: 'Only these routes',
    routes_none_available: 'No routes are available to this team yet.',
    routes_pick: 'Pick at least one route.',
    shared: 'shared',
    name_required: 'Give the key a name.',
    create: 'Create',
    creating: 'Creating…',
    created: 'Key “{{name}}” created.',
    secret_label: 'New API key',
    secret_warning: 'Copy the key now. It will not be shown again: only a masked prefix is kept.',
    secret_hint: 'Send it as “Authorization: Bearer <key>” (or X-API-Key) to the gateway.',
    done: 'Done',
    edit_title: 'Edit {{name}}',
    saved: 'Key “{{name}}” saved.',
    revoke_title: 'Revoke {{name}}?',
    revoke_message: 'The gateway refuses this key within a second. A revoked key cannot be reactivated; its usage stays.',
    revoked: 'Key “{{name}}” revoked.',
    delete_title: 'Delete {{name}}?',
    delete_message: 'The key is removed and stops working at once. Its recorded usage stays in the logs and analytics.',
    deleted: 'Key “{{name}}” deleted.',
    reveal_title: 'Reveal {{name}}',
    reveal_message: 'The full key will be shown. Every reveal is recorded in the audit log.',
    reveal_button: 'Reveal key',
    revealing: 'Revealing…',
    revealed_label: 'API key',
    revealed_note: 'Keep it secret. This reveal was recorded in the audit log.',
  },
  {
    'zh-CN': {
      title: 'API 密钥',
      subtitle: '脚本、工作流和服务通过密钥经网关调用路由。列表中只显示遮盖后的前缀。',
      create_key: '创建密钥',
      create_title: '创建 API 密钥',
      filter: '筛选',
      filter_placeholder: '名称、前缀或描述',
      team: '团队',
      status: '状态',
      status_active: '有效',
      status_expired: '已过期',
      status_revoked: '已吊销',
      col_name: '名称',
      col_key: '密钥',
      col_team: '团队',
      col_status: '状态',
      col_created: '创建时间',
      col_last_used: '最近使用',
      col_routes: '路由',
      col_actions: '操作',
      never_used: '从未使用',
      no_expiry: '永不过期',
      expires_on: '{{date}} 过期',
      expired_on: '已于 {{date}} 过期',
      revoked_on: '已于 {{date}} 吊销',
      all_routes: '全部路由',
      no_routes: '无路由',
      more_routes: '另有 {{count}} 个',
      created_by: '创建者：{{who}}',
      empty: '还没有密钥。',
      empty_create: '创建一个密钥，让脚本或服务调用网关。',
      empty_filtered: '没有符合筛选条件的密钥。',
      edit: '编辑',
      edit_label: '编辑 {{name}}',
      revoke: '吊销',
      revoke_label: '吊销 {{name}}',
      delete: '删除',
      delete_label: '删除 {{name}}',
      reveal: '查看',
      reveal_label: '查看 {{name}}',
      name: '名称',
      name_help: '用途，例如“n8n 生产环境”。',
      description: '描述',
      expiry: '有效期',
      expiry_never: '永不过期',
      expiry_days: '{{count}} 天后',
      expiry_date: '指定日期…',
      expiry_on: '过期日期',
      expiry_at: '{{when}}过期',
      expiry_future: '请选择一个将来的日期。',
      routes: '允许的路由',
      routes_all: '团队的全部路由及共享路由',
      routes_some: '仅以下路由',
      routes_none_available: '该团队暂无可用路由。',
      routes_pick: '请至少选择一个路由。',
      shared: '共享',
      name_required: '请填写密钥名称。',
      create: '创建',
      creating: '创建中…',
      created: '密钥“{{name}}”已创建。',
      secret_label: '新的 API 密钥',
      secret_warning: '请立即复制密钥。它不会再次显示：系统只保留遮盖后的前缀。',
      secret_hint: '调用网关时以“Authorization: Bearer <密钥>”（或 X-API-Key）发送。',
      done: '完成',
      edit_title: '编辑 {{name}}',
      saved: '密钥“{{name}}”已保存。',
      revoke_title: '吊销 {{name}}？',
      revoke_message: '网关将在一秒内拒绝此密钥。吊销后无法恢复，已有用量数据会保留。',
      revoked: '密钥“{{name}}”已吊销。',
      delete_title: '删除 {{name}}？',
      delete_message: '密钥将被删除并立即失效。已记录的用量仍保留在日志和分析中。',
      deleted: '密钥“{{name}}”已删除。',
      reveal_title: '查看 {{name}}',
      reveal_message: '将显示完整密钥。每次查看都会记录到审计日志。',
      reveal_button: '显示密钥',
      revealing: '读取中…',
      revealed_label: 'API 密钥',
      revealed_note: '请妥善保管。本次查看已记录到审计日志。',
    },
    'zh-TW': {
      title: 'API 金鑰',
      subtitle: '指令碼、工作流程和服務透過金鑰經閘道呼叫路由。清單中只顯示遮蔽後的前綴。',
      create_key: '建立金鑰',
      create_title: '建立 API 金鑰',
      filter: '篩選',
      filter_placeholder: '名稱、前綴或說明',
      team: '團隊',
      status: '狀態',
      status_active: '有效',
      status_expired: '已過期',
      status_revoked: '已撤銷',
      col_name: '名稱',
      col_key: '金鑰',
      col_team: '團隊',
      col_status: '狀態',
      col_created: '建立時間',
      col_last_used: '最近使用',
      col_routes: '路由',
      col_actions: '操作',
      never_used: '從未使用',
      no_expiry: '永不到期',
      expires_on: '{{date}} 到期',
      expired_on: '已於 {{date}} 到期',
      revoked_on: '已於 {{date}} 撤銷',
      all_routes: '全部路由',
      no_routes: '無路由',
      more_routes: '另有 {{count}} 個',
      created_by: '建立者：{{who}}',
      empty: '還沒有金鑰。',
      empty_create: '建立一把金鑰，讓指令碼或服務呼叫閘道。',
      empty_filtered: '沒有符合篩選條件的金鑰。',
      edit: '編輯',
      edit_label: '編輯 {{name}}',
      revoke: '撤銷',
      revoke_label: '撤銷 {{name}}',
      delete: '刪除',
      delete_label: '刪除 {{name}}',
      reveal: '檢視',
      reveal_label: '檢視 {{name}}',
      name: '名稱',
      name_help: '用途，例如「n8n 正式環境」。',
      description: '說明',
      expiry: '有效期限',
      expiry_never: '永不到期',
      expiry_days: '{{count}} 天後',
      expiry_date: '指定日期…',
      expiry_on: '到期日期',
      expiry_at: '{{when}}到期',
      expiry_future: '請選擇未來的日期。',
      routes: '允許的路由',
      routes_all: '團隊的全部路由及共用路由',
      routes_some: '僅限以下路由',
      routes_none_available: '此團隊尚無可用路由。',
      routes_pick: '請至少選擇一個路由。',
      shared: '共用',
      name_required: '請填寫金鑰名稱。',
      create: '建立',
      creating: '建立中…',
      created: '金鑰「{{name}}」已建立。',
      secret_label: '新的 API 金鑰',
      secret_warning: '請立即複製金鑰。它不會再次顯示：系統只保留遮蔽後的前綴。',
      secret_hint: '呼叫閘道時以「Authorization: Bearer <金鑰>」（或 X-API-Key）傳送。',
      done: '完成',
      edit_title: '編輯 {{name}}',
      saved: '金鑰「{{name}}」已儲存。',
      revoke_title: '撤銷 {{name}}？',
      revoke_message: '閘道將在一秒內拒絕此金鑰。撤銷後無法恢復，已有的用量資料會保留。',
      revoked: '金鑰「{{name}}」已撤銷。',
      delete_title: '刪除 {{name}}？',
      delete_message: '金鑰將被刪除並立即失效。已記錄的用量仍保留在日誌與分析中。',
      deleted: '金鑰「{{name}}」已刪除。',
      reveal_title: '檢視 {{name}}',
      reveal_message: '將顯示完整金鑰。每次檢視都會記錄在稽核日誌中。',
      reveal_button: '顯示金鑰',
      revealing: '讀取中…',
      revealed_label: 'API 金鑰',
      revealed_note: '請妥善保管。本次檢視已記錄在稽核日誌中。',
    },
  },
);

type KeyView = Schemas['KeyView'];
type RouteView = Schemas['RouteView'];
type TeamOption = { id: number; name: string };

// ---------------------------------------------------------------------------------------------
// Pure helpers (tested)

const DAY_MS = 86_400_000;
export const EXPIRY_PRESETS = ['never', '30', '90', '365', 'date'] as const;
export type ExpiryChoice = (typeof EXPIRY_PRESETS)[number];

/**
 * The expiry timestamp (epoch ms) of a choice: `null` for no expiry, `now + N days` for a
 * preset, the end of the chosen day (browser time zone) for a date; `undefined` when the date is
 * missing, invalid or not in the future.
 */
export function expiryTimestamp(choice: ExpiryChoice, day: string, now: number): number | null | undefined {
  switch (choice) {
    case 'never':
      return null;
    case 'date': {
      if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) return undefined;
      const ms = new Date(`${day}T23:59:59.999`).getTime();
      return Number.isNaN(ms) || ms <= now ? undefined : ms;
    }
    default:
      return now + Number(choice) * DAY_MS;
  }
}

/** Who may change (edit, revoke, delete) a key: its team's owners and admins, or the member who made it. */
export function mayChangeKey(can: Permissions, email: string, key: Pick<KeyView, 'team_id' | 'created_by'>): boolean {
  if (can.canManage(key.team_id)) return true;
  return can.roleIn(key.team_id) === 'member' && key.created_by === `user:${email}`;
}

/** Who may reveal a key: owners and admins of its team, when a copy was kept and it still works. */
export function mayRevealKey(can: Permissions, key: Pick<KeyView, 'team_id' | 'revealable' | 'status'>): boolean {
  return key.revealable && key.status !== 'revoked' && can.canManage(key.team_id);
}

/** Client-side filter of the list. */
export function filterKeys(keys: KeyView[], text: string, teamId: number | undefined, status: string): KeyView[] {
  const needle = text.trim().toLowerCase();
  return keys.filter(
    (k) =>
      (!teamId || k.team_id === teamId) &&
      (!status || k.status === status) &&
      (!needle ||
        k.name.toLowerCase().includes(needle) ||
        k.prefix.toLowerCase().includes(needle) ||
        k.description.toLowerCase().includes(needle)),
  );
}

/** Routes a key of `teamId` may be allowed: the team's and the shared ones. */
function routesFor(routes: RouteView[], teamId: number | undefined): RouteView[] {
  return routes.filter((r) => r.team_id === null || r.team_id === undefined || r.team_id === teamId);
}

function statusTone(status: string): string {
  return status === 'active' ? 'success' : status === 'expired' ? 'warning' : 'danger';
}

/** Field errors of an API error, keyed by our form's field names. */
function fieldOf(error: unknown): string | null {
  if (!(error instanceof ApiError) || !error.field) return null;
  if (error.field === 'expires_in' || error.field === 'expires_at') return 'expiry';
  if (error.field === 'route_ids') return 'routes';
  if (error.field === 'team_id') return 'team';
  return error.field;
}

// ---------------------------------------------------------------------------------------------
// The page

export default function KeysPage() {
  const { t } = useTranslation([ns, 'common']);
  const { session } = useAuth();
  const can = usePermissions();
  const email = session?.user.email ?? '';
  const [params, setParams] = useSearchParams();
  const ids = useId();
  const text = params.get('q') ?? '';
  const teamFilter = Number(params.get('team')) || undefined;
  const statusFilter = params.get('status') ?? '';
  const setFilter = (name: string, value: string) =>
    setParams(
      (prev) => {
        const p = new URLSearchParams(prev);
        if (value) p.set(name, value);
        else p.delete(name);
        return p;
      },
      { replace: true },
    );

  const keys = useKeys();
  const routes = useRoutes();
  const teams = useTeams();

  // Teams the user may create keys in (instance admins: every team).
  const keyTeams: TeamOption[] = useMemo(() => {
    const all = teams.data?.map((x) => ({ id: x.id, name: x.name })) ?? can.keyTeams;
    return all.filter((x) => can.canCreateKeys(x.id));
  }, [teams.data, can]);
  const mayCreate = can.isAdmin || can.keyTeams.length > 0;

  const [creating, setCreating] = useState(false);
  const [editing, setEditing] = useState<KeyView | null>(null);
  const [revoking, setRevoking] = useState<KeyView | null>(null);
  const [deleting, setDeleting] = useState<KeyView | null>(null);
  const [revealing, setRevealing] = useState<KeyView | null>(null);

  const list = keys.data ?? [];
  const shown = filterKeys(list, text, teamFilter, statusFilter);
  const teamOptions = teams.data ?? [...new Map(list.map((k) => [k.team_id, { id: k.team_id, name: k.team }])).values()];
  const routeNames = new Map((routes.data ?? []).map((r) => [r.id, r.name]));

  return (
    <div className="keys-page">
      <PageHeader title={t('title')} subtitle={t('subtitle')}>
        {mayCreate && (
          <button type="button" className="primary" onClick={() => setCreating(true)}>
            {t('create_key')}
          </button>
        )}
      </PageHeader>

      <div className="filters" role="search">
        <div className="filter-field keys-filter-text">
          <label htmlFor={`${ids}-q`}>{t('filter')}</label>
          <input
            id={`${ids}-q`}
            type="search"
            value={text}
            placeholder={t('filter_placeholder')}
            onChange={(e) => setFilter('q', e.target.value)}
          />
        </div>
        <div className="filter-field">
          <label htmlFor={`${ids}-team`}>{t('team')}</label>
          <select id={`${ids}-team`} value={teamFilter ?? ''} onChange={(e) => setFilter('team', e.target.value)}>
            <TeamOptions teams={teamOptions} all />
          </select>
        </div>
        <div className="filter-field">
          <span className="keys-status-label" aria-hidden="true">
            {t('status')}
          </span>
          <Segmented
            label={t('status')}
            value={statusFilter}
            onChange={(v) => setFilter('status', v)}
            options={(['', 'active', 'expired', 'revoked'] as const).map((s) => ({
              value: s,
              label: (
                <>
                  {s ? t(`status_${s}`) : t('common:all')}{' '}
                  <span className="keys-count">{integer(s ? list.filter((k) => k.status === s).length : list.length)}</span>
                </>
              ),
            }))}
          />
        </div>
      </div>

      {keys.isPending ? (
        <Loading />
      ) : keys.isError ? (
        <ErrorState error={keys.error} onRetry={() => void keys.refetch()} />
      ) : list.length === 0 ? (
        <Empty>
          <p>{t('empty')}</p>
          {mayCreate && <p className="muted">{t('empty_create')}</p>}
        </Empty>
      ) : shown.length === 0 ? (
        <Empty>{t('empty_filtered')}</Empty>
      ) : (
        <KeysTable
          keys={shown}
          can={can}
          email={email}
          routeNames={routeNames}
          onEdit={setEditing}
          onRevoke={setRevoking}
          onDelete={setDeleting}
          onReveal={setRevealing}
        />
      )}

      {creating && (
        <CreateKeyDialog
          teams={keyTeams}
          routes={routes.data ?? []}
          defaultTeam={teamFilter && keyTeams.some((x) => x.id === teamFilter) ? teamFilter : undefined}
          onClose={() => setCreating(false)}
        />
      )}
      {editing && <EditKeyDialog keyView={editing} routes={routes.data ?? []} onClose={() => setEditing(null)} />}
      <RevokeDialog keyView={revoking} onClose={() => setRevoking(null)} />
      <DeleteDialog keyView={deleting} onClose={() => setDeleting(null)} />
      {revealing && <RevealDialog keyView={revealing} onClose={() => setRevealing(null)} />}
    </div>
  );
}

// ---------------------------------------------------------------------------------------------
// The table

export function KeysTable({
  keys,
  can,
  email,
  routeNames,
  onEdit,
  onRevoke,
  onDelete,
  onReveal,
}: {
  keys: KeyView[];
  can: Permissions;
  email: string;
  routeNames: Map<number, string>;
  onEdit: (k: KeyView) => void;
  onRevoke: (k: KeyView) => void;
  onDelete: (k: KeyView) => void;
  onReveal: (k: KeyView) => void;
}) {
  const { t } = useTranslation(ns);
  const anyActions = keys.some((k) => mayChangeKey(can, email, k));
  return (
    <div className="table-wrap">
      <table className="keys-table">
        <thead>
          <tr>
            <th scope="col">{t('col_name')}</th>
            <th scope="col">{t('col_key')}</th>
            <th scope="col">{t('col_team')}</th>
            <th scope="col">{t('col_status')}</th>
            <th scope="col" className="keys-created">
              {t('col_created')}
            </th>
            <th scope="col">{t('col_last_used')}</th>
            <th scope="col">{t('col_routes')}</th>
            {anyActions && (
              <th scope="col" className="num">
                <span className="sr-only">{t('col_actions')}</span>
              </th>
            )}
          </tr>
        </thead>
        <tbody>
          {keys.map((k) => {
            const change = mayChangeKey(can, email, k);
            const reveal = mayRevealKey(can, k);
            return (
              <tr key={k.id} className={k.status === 'revoked' ? 'keys-revoked' : undefined}>
                <td
                  className="keys-name"
                  title={`${t('col_created')}: ${dateTime(k.created_at)}${k.created_by ? ` · ${t('created_by', { who: k.created_by })}` : ''}`}
                >
                  <strong>{k.name}</strong>
                  {k.description && <div className="muted keys-desc">{k.description}</div>}
                </td>
                <td className="keys-key">
                  <code className="keys-prefix">{k.prefix}</code>
                  {reveal && (
                    <button
                      type="button"
                      className="small ghost keys-reveal"
                      aria-label={t('reveal_label', { name: k.name })}
                      onClick={() => onReveal(k)}
                    >
                      {t('reveal')}
                    </button>
                  )}
                </td>
                <td>{k.team}</td>
                <td>
                  <span className={`badge ${statusTone(k.status)}`}>{t(`status_${k.status}`, k.status)}</span>
                  <ExpiryLine keyView={k} />
                </td>
                <td className="keys-created" title={`${dateTime(k.created_at)}${k.created_by ? ` · ${t('created_by', { who: k.created_by })}` : ''}`}>
                  {date(k.created_at)}
                </td>
                <td>
                  {k.last_used_at ? (
                    <time dateTime={new Date(k.last_used_at).toISOString()} title={dateTime(k.last_used_at)}>
                      {relative(k.last_used_at)}
                    </time>
                  ) : (
                    <span className="muted">{t('never_used')}</span>
                  )}
                </td>
                <td>
                  <RouteList ids={k.route_ids} names={routeNames} />
                </td>
                {anyActions && (
                  <td>
                    <div className="actions">
                      {change && (
                        <button
                          type="button"
                          className="small"
                          aria-label={t('edit_label', { name: k.name })}
                          onClick={() => onEdit(k)}
                        >
                          {t('edit')}
                        </button>
                      )}
                      {change && k.status !== 'revoked' && (
                        <button
                          type="button"
                          className="small danger"
                          aria-label={t('revoke_label', { name: k.name })}
                          onClick={() => onRevoke(k)}
                        >
                          {t('revoke')}
                        </button>
                      )}
                      {change && (
                        <button
                          type="button"
                          className="small danger"
                          aria-label={t('delete_label', { name: k.name })}
                          onClick={() => onDelete(k)}
                        >
                          {t('delete')}
                        </button>
                      )}
                    </div>
                  </td>
                )}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

/** Under the status: when the key expires, expired or was revoked. */
function ExpiryLine({ keyView: k }: { keyView: KeyView }) {
  const { t } = useTranslation(ns);
  if (k.revoked_at) {
    return (
      <div className="keys-sub muted" title={dateTime(k.revoked_at)}>
        {t('revoked_on', { date: date(k.revoked_at) })}
      </div>
    );
  }
  if (!k.expires_at) return <div className="keys-sub muted">{t('no_expiry')}</div>;
  const soon = k.status === 'active' && k.expires_at - Date.now() < 7 * DAY_MS;
  return (
    <div className={`keys-sub${soon ? ' keys-soon' : ' muted'}`} title={`${dateTime(k.expires_at)} (${relative(k.expires_at)})`}>
      {t(k.status === 'expired' ? 'expired_on' : 'expires_on', { date: date(k.expires_at) })}
    </div>
  );
}

function RouteList({ ids, names }: { ids: number[] | null | undefined; names: Map<number, string> }) {
  const { t } = useTranslation(ns);
  if (ids === null || ids === undefined) return <span className="muted">{t('all_routes')}</span>;
  if (ids.length === 0) return <span className="badge warning">{t('no_routes')}</span>;
  const labels = ids.map((id) => names.get(id) ?? `#${id}`);
  const first = labels.slice(0, 3);
  return (
    <span className="keys-routes" title={labels.join(', ')}>
      {first.map((l) => (
        <span key={l} className="badge info">
          {l}
        </span>
      ))}
      {labels.length > first.length && <span className="muted">{t('more_routes', { count: labels.length - first.length })}</span>}
    </span>
  );
}

// ---------------------------------------------------------------------------------------------
// Form parts shared by create and edit

function ExpiryPicker({
  choice,
  day,
  onChoice,
  onDay,
  error,
  current,
}: {
  choice: ExpiryChoice;
  day: string;
  onChoice: (c: ExpiryChoice) => void;
  onDay: (d: string) => void;
  error?: string | null;
  current?: ReactNode;
}) {
  const { t } = useTranslation(ns);
  const preview = expiryTimestamp(choice, day, Date.now());
  return (
    <>
      <Field label={t('expiry')} help={current} error={choice === 'date' ? null : error}>
        <select value={choice} onChange={(e) => onChoice(e.target.value as ExpiryChoice)}>
          <option value="never">{t('expiry_never')}</option>
          {(['30', '90', '365'] as const).map((d) => (
            <option key={d} value={d}>
              {t('expiry_days', { count: Number(d) })}
            </option>
          ))}
          <option value="date">{t('expiry_date')}</option>
        </select>
      </Field>
      {choice === 'date' && (
        <Field label={t('expiry_on')} error={error}>
          <input
            type="date"
            value={day}
            min={localDay(Date.now())}
            required
            aria-invalid={!!error || undefined}
            onChange={(e) => onDay(e.target.value)}
          />
        </Field>
      )}
      {typeof preview === 'number' && <p className="muted keys-preview">{t('expiry_at', { when: dateTime(preview) })}</p>}
    </>
  );
}

function RoutePicker({
  routes,
  teamId,
  restricted,
  selected,
  onRestricted,
  onSelected,
  error,
}: {
  routes: RouteView[];
  teamId: number | undefined;
  restricted: boolean;
  selected: number[];
  onRestricted: (v: boolean) => void;
  onSelected: (ids: number[]) => void;
  error?: string | null;
}) {
  const { t } = useTranslation(ns);
  const available = routesFor(routes, teamId);
  return (
    <fieldset className="keys-routes-picker">
      <legend>{t('routes')}</legend>
      <label className="row">
        <input type="radio" name="routes-mode" checked={!restricted} onChange={() => onRestricted(false)} />
        {t('routes_all')}
      </label>
      <label className="row">
        <input type="radio" name="routes-mode" checked={restricted} onChange={() => onRestricted(true)} />
        {t('routes_some')}
      </label>
      {restricted &&
        (available.length === 0 ? (
          <p className="muted">{t('routes_none_available')}</p>
        ) : (
          <ul className="keys-route-options">
            {available.map((r) => (
              <li key={r.id}>
                <label className="row">
                  <input
                    type="checkbox"
                    checked={selected.includes(r.id)}
                    onChange={(e) =>
                      onSelected(e.target.checked ? [...selected, r.id] : selected.filter((id) => id !== r.id))
                    }
                  />
                  <span>{r.name}</span>
                  <code className="muted">{r.prefix}</code>
                  {(r.team_id === null || r.team_id === undefined) && <span className="badge">{t('shared')}</span>}
                </label>
              </li>
            ))}
          </ul>
        ))}
      {error && (
        <small className="error" role="alert">
          {error}
        </small>
      )}
    </fieldset>
  );
}

// ---------------------------------------------------------------------------------------------
// Create (with the one-time secret)

export function CreateKeyDialog({
  teams,
  routes,
  defaultTeam,
  onClose,
}: {
  teams: TeamOption[];
  routes: RouteView[];
  defaultTeam?: number;
  onClose: () => void;
}) {
  const { t } = useTranslation([ns, 'common']);
  const queries = useQueryClient();
  const toast = useToast();
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [teamId, setTeamId] = useState<number | undefined>(defaultTeam ?? teams[0]?.id);
  const [choice, setChoice] = useState<ExpiryChoice>('never');
  const [day, setDay] = useState('');
  const [restricted, setRestricted] = useState(false);
  const [selected, setSelected] = useState<number[]>([]);
  const [local, setLocal] = useState<Record<string, string>>({});
  useEffect(() => {
    if (teamId === undefined && teams[0]) setTeamId(teams[0].id);
  }, [teams, teamId]);

  const create = useMutation({
    mutationFn: (body: Schemas['KeyCreate']) => unwrap(client.POST('/api/v1/keys', { body })),
    onSuccess: (created) => {
      void queries.invalidateQueries({ queryKey: ['keys'] });
      toast(t('created', { name: created.name }));
    },
  });
  const created = create.data;
  const serverField = fieldOf(create.error);
  const errorAt = (f: string) => local[f] ?? (serverField === f ? (create.error as ApiError).message : null);

  function submit(e: FormEvent) {
    e.preventDefault();
    const problems: Record<string, string> = {};
    if (!name.trim()) problems.name = t('name_required');
    const expires = expiryTimestamp(choice, day, Date.now());
    if (expires === undefined) problems.expiry = t('expiry_future');
    const ids = selected.filter((id) => routesFor(routes, teamId).some((r) => r.id === id));
    if (restricted && ids.length === 0) problems.routes = t('routes_pick');
    setLocal(problems);
    if (Object.keys(problems).length > 0) {
      focusFirstInvalid(e.currentTarget as HTMLFormElement);
      return;
    }
    create.mutate({
      name: name.trim(),
      description,
      ...(teamId !== undefined ? { team_id: teamId } : {}),
      ...(typeof expires === 'number' ? { expires_at: expires } : {}),
      ...(restricted ? { route_ids: ids } : {}),
    });
  }

  return (
    <Dialog
      open
      onClose={onClose}
      title={t('create_title')}
      footer={
        created ? (
          <button type="button" className="primary" onClick={onClose}>
            {t('done')}
          </button>
        ) : (
          <FormButtons
            onCancel={onClose}
            label={t('create')}
            busy={create.isPending}
            busyLabel={t('creating')}
            form="create-key-form"
          />
        )
      }
    >
      {created ? (
        <OneTimeSecret created={created} />
      ) : (
        <form id="create-key-form" onSubmit={submit} noValidate>
          {!serverField && <ErrorAlert error={create.error} />}
          <Field label={t('name')} help={t('name_help')} error={errorAt('name')}>
            <input
              value={name}
              maxLength={100}
              required
              autoFocus
              aria-invalid={!!errorAt('name') || undefined}
              onChange={(e) => setName(e.target.value)}
            />
          </Field>
          <Field label={t('description')} error={errorAt('description')}>
            <textarea value={description} maxLength={1000} rows={2} onChange={(e) => setDescription(e.target.value)} />
          </Field>
          <Field label={t('team')} error={errorAt('team')}>
            <select
              value={teamId ?? ''}
              onChange={(e) => {
                const id = Number(e.target.value);
                setTeamId(id);
                setSelected((ids) => ids.filter((r) => routesFor(routes, id).some((x) => x.id === r)));
              }}
            >
              <TeamOptions teams={teams} />
            </select>
          </Field>
          <ExpiryPicker choice={choice} day={day} onChoice={setChoice} onDay={setDay} error={errorAt('expiry')} />
          <RoutePicker
            routes={routes}
            teamId={teamId}
            restricted={restricted}
            selected={selected}
            onRestricted={setRestricted}
            onSelected={setSelected}
            error={errorAt('routes')}
          />
        </form>
      )}
    </Dialog>
  );
}

/** The secret of a new key, shown this once, with a copy button. */
export function OneTimeSecret({ created }: { created: Schemas['KeyCreated'] }) {
  const { t } = useTranslation(ns);
  return (
    <div className="stack keys-secret-box">
      <div className="alert success">{t('created', { name: created.name })}</div>
      <div className="alert warning" role="alert">
        <strong>{t('secret_warning')}</strong>
      </div>
      <SecretValue value={created.key} label={t('secret_label')} className="keys-secret" />
      <p className="muted">{t('secret_hint')}</p>
    </div>
  );
}

// ---------------------------------------------------------------------------------------------
// Edit

function EditKeyDialog({ keyView, routes, onClose }: { keyView: KeyView; routes: RouteView[]; onClose: () => void }) {
  const { t } = useTranslation([ns, 'common']);
  const queries = useQueryClient();
  const toast = useToast();
  const initialDay = keyView.expires_at ? localDay(keyView.expires_at) : '';
  const [name, setName] = useState(keyView.name);
  const [description, setDescription] = useState(keyView.description);
  const [choice, setChoice] = useState<ExpiryChoice>(keyView.expires_at ? 'date' : 'never');
  const [day, setDay] = useState(initialDay);
  const [restricted, setRestricted] = useState(keyView.route_ids !== null && keyView.route_ids !== undefined);
  const [selected, setSelected] = useState<number[]>(keyView.route_ids ?? []);
  const [local, setLocal] = useState<Record<string, string>>({});

  const save = useMutation({
    mutationFn: (body: Schemas['KeyPatch']) =>
      unwrap(client.PATCH('/api/v1/keys/{id}', { params: { path: { id: keyView.id } }, body })),
    onSuccess: (updated) => {
      void queries.invalidateQueries({ queryKey: ['keys'] });
      toast(t('saved', { name: updated.name }));
      onClose();
    },
  });
  const serverField = fieldOf(save.error);
  const errorAt = (f: string) => local[f] ?? (serverField === f ? (save.error as ApiError).message : null);

  function submit(e: FormEvent) {
    e.preventDefault();
    const problems: Record<string, string> = {};
    if (!name.trim()) problems.name = t('name_required');
    const body: Schemas['KeyPatch'] = {};
    if (name.trim() !== keyView.name) body.name = name.trim();
    if (description !== keyView.description) body.description = description;
    // The expiry is sent only when it changed (an unchanged date keeps its exact time).
    const expiryUnchanged =
      (choice === 'never' && !keyView.expires_at) || (choice === 'date' && keyView.expires_at && day === initialDay);
    if (!expiryUnchanged) {
      const expires = expiryTimestamp(choice, day, Date.now());
      if (expires === undefined) problems.expiry = t('expiry_future');
      else body.expires_at = expires;
    }
    const ids = selected.filter((id) => routesFor(routes, keyView.team_id).some((r) => r.id === id)).sort((a, b) => a - b);
    if (restricted && ids.length === 0) problems.routes = t('routes_pick');
    const before = keyView.route_ids ? [...keyView.route_ids].sort((a, b) => a - b) : null;
    const after = restricted ? ids : null;
    if (JSON.stringify(before) !== JSON.stringify(after)) body.route_ids = after;
    setLocal(problems);
    if (Object.keys(problems).length > 0) {
      focusFirstInvalid(e.currentTarget as HTMLFormElement);
      return;
    }
    if (Object.keys(body).length === 0) {
      onClose();
      return;
    }
    save.mutate(body);
  }

  return (
    <Dialog
      open
      onClose={onClose}
      title={t('edit_title', { name: keyView.name })}
      footer={
        <FormButtons
          onCancel={onClose}
          label={t('common:save')}
          busy={save.isPending}
          form="edit-key-form"
        />
      }
    >
      <form id="edit-key-form" onSubmit={submit} noValidate>
        {!serverField && <ErrorAlert error={save.error} />}
        <p className="muted">
          <code>{keyView.prefix}</code> · {keyView.team}
        </p>
        <Field label={t('name')} error={errorAt('name')}>
          <input
            value={name}
            maxLength={100}
            required
            aria-invalid={!!errorAt('name') || undefined}
            onChange={(e) => setName(e.target.value)}
          />
        </Field>
        <Field label={t('description')} error={errorAt('description')}>
          <textarea value={description} maxLength={1000} rows={2} onChange={(e) => setDescription(e.target.value)} />
        </Field>
        <ExpiryPicker
          choice={choice}
          day={day}
          onChoice={setChoice}
          onDay={setDay}
          error={errorAt('expiry')}
          current={keyView.expires_at ? t('expiry_at', { when: dateTime(keyView.expires_at) }) : undefined}
        />
        <RoutePicker
          routes={routes}
          teamId={keyView.team_id}
          restricted={restricted}
          selected={selected}
          onRestricted={setRestricted}
          onSelected={setSelected}
          error={errorAt('routes')}
        />
      </form>
    </Dialog>
  );
}

// ---------------------------------------------------------------------------------------------
// Revoke, delete, reveal

function RevokeDialog({ keyView, onClose }: { keyView: KeyView | null; onClose: () => void }) {
  const { t } = useTranslation(ns);
  const queries = useQueryClient();
  const toast = useToast();
  return (
    <ConfirmAction
      target={keyView}
      title={t('revoke_title', { name: keyView?.name ?? '' })}
      message={t('revoke_message')}
      confirmLabel={t('revoke')}
      run={(k) => unwrap(client.POST('/api/v1/keys/{id}/revoke', { params: { path: { id: k.id } } }))}
      onDone={(k) => {
        void queries.invalidateQueries({ queryKey: ['keys'] });
        toast(t('revoked', { name: k.name }));
      }}
      onClose={onClose}
    />
  );
}

function DeleteDialog({ keyView, onClose }: { keyView: KeyView | null; onClose: () => void }) {
  const { t } = useTranslation(ns);
  const queries = useQueryClient();
  const toast = useToast();
  return (
    <ConfirmAction
      target={keyView}
      title={t('delete_title', { name: keyView?.name ?? '' })}
      message={t('delete_message')}
      confirmLabel={t('delete')}
      run={(k) => unwrap(client.DELETE('/api/v1/keys/{id}', { params: { path: { id: k.id } } }))}
      onDone={(k) => {
        void queries.invalidateQueries({ queryKey: ['keys'] });
        toast(t('deleted', { name: k.name }));
      }}
      onClose={onClose}
    />
  );
}

function RevealDialog({ keyView, onClose }: { keyView: KeyView; onClose: () => void }) {
  const { t } = useTranslation([ns, 'common']);
  const reveal = useMutation({
    mutationFn: () => unwrap(client.POST('/api/v1/keys/{id}/reveal', { params: { path: { id: keyView.id } } })),
  });
  return (
    <Dialog
      open
      onClose={onClose}
      title={t('reveal_title', { name: keyView.name })}
      footer={
        reveal.data ? (
          <button type="button" className="primary" onClick={onClose}>
            {t('done')}
          </button>
        ) : (
          <>
            <button type="button" onClick={onClose}>
              {t('common:cancel')}
            </button>
            <button type="button" className="primary" onClick={() => reveal.mutate()} disabled={reveal.isPending}>
              {reveal.isPending ? t('revealing') : t('reveal_button')}
            </button>
          </>
        )
      }
    >
      <ErrorAlert error={reveal.error} />
      {reveal.data ? (
        <div className="stack">
          <SecretValue value={reveal.data.key} label={t('revealed_label')} className="keys-secret" />
          <p className="muted">{t('revealed_note')}</p>
        </div>
      ) : (
        <p>
          <code>{keyView.prefix}</code> · {keyView.team}
          <br />
          {t('reveal_message')}
        </p>
      )}
    </Dialog>
  );
}
