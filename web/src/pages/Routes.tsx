// Routes: path prefixes mapped to upstream services. Owners and admins of a team manage its
// routes; instance admins also manage the shared ones. The upstream credential is write-only:
// the list only says whether one is stored.
import { useId, useMemo, useState, type FormEvent } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { ApiError, client, unwrap, type Schemas } from '../api/client';
import { REFERENCE_STALE_MS, useRoutes, useSettings, useTeams } from '../api/queries';
import { usePermissions, type Permissions } from '../auth';
import { ROUTE_KINDS } from '../api/vocabulary';
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
  TeamOptions,
  focusFirstInvalid,
  useToast,
} from '../components/ui';
import { dateTime, millis } from '../format';

const ns = defineMessages(
  'routes',
  {
    title: 'Routes',
    subtitle: 'A route sends calls under a path prefix to an upstream service. The longest matching prefix wins.',
    create_route: 'Create route',
    create_title: 'Create route',
    edit_title: 'Edit route {{name}}',
    filter: 'Filter',
    filter_placeholder: 'Name, prefix or upstream',
    owner: 'Owner',
    any_owner: 'All routes',
    shared_only: 'Shared routes',
    col_name: 'Name',
    col_prefix: 'Prefix',
    col_upstream: 'Upstream',
    col_kind: 'Kind',
    col_team: 'Team',
    col_strip: 'Strip prefix',
    col_timeouts: 'Timeouts',
    col_credential: 'Credential',
    col_actions: 'Actions',
    shared: 'Shared',
    disabled: 'Disabled',
    configured: 'Configured',
    not_configured: 'None',
    timeouts_value: '{{connect}} / {{total}}',
    timeouts_title: 'Connect timeout {{connect}}, response timeout {{total}}',
    empty: 'No routes yet.',
    empty_create: 'Create a route to put an upstream service behind the gateway.',
    empty_filtered: 'No routes match the filter.',
    edit: 'Edit',
    edit_label: 'Edit {{name}}',
    delete: 'Delete',
    delete_label: 'Delete {{name}}',
    delete_title: 'Delete route {{name}}?',
    delete_message: 'Calls to {{prefix}} will get 404 no_route. Keys that list this route lose it. Recorded usage stays.',
    deleted: 'Route “{{name}}” deleted.',
    created: 'Route “{{name}}” created.',
    saved: 'Route “{{name}}” saved.',
    name: 'Name',
    name_help: 'Letters, digits, -, _ and . (up to 64).',
    prefix: 'Path prefix',
    prefix_help: 'Starts with /, e.g. /openai. Calls to /openai/… go to this route.',
    upstream: 'Upstream URL',
    upstream_help: 'http:// or https:// base URL, without query or fragment.',
    kind: 'Kind',
    kind_http: 'HTTP (any service)',
    kind_openai: 'OpenAI-compatible (records model and tokens)',
    kind_anthropic: 'Anthropic (records model and tokens)',
    team: 'Team',
    team_shared: 'Shared by every team',
    team_fixed: 'The owning team cannot be changed.',
    strip: 'Strip the prefix before forwarding',
    strip_help: 'On: /openai/v1/chat → upstream/v1/chat. Off: upstream/openai/v1/chat.',
    enabled: 'Enabled',
    enabled_help: 'A disabled route refuses calls (404) but keeps its settings.',
    connect_timeout: 'Connect timeout (ms)',
    timeout: 'Response timeout (ms)',
    timeout_help: 'Also the idle timeout of streamed responses.',
    credential: 'Upstream credential',
    credential_help: 'Sent upstream by the gateway (OpenAI/HTTP: Authorization: Bearer; Anthropic: x-api-key), so clients only hold tollgate keys. Write-only.',
    credential_keep: 'Keep the stored credential',
    credential_replace: 'Replace it',
    credential_remove: 'Remove it',
    credential_new: 'New credential',
    credential_stored: 'A credential is stored. It is never shown.',
    credential_no_master: 'Storing credentials needs a master key (TOLLGATE_MASTER_KEY); none is configured.',
    optional: 'optional',
    bad_name: 'Use 1 to 64 letters, digits, -, _ or .',
    bad_prefix: 'The prefix must start with / and must not end with / (except “/”), nor contain ?, #, spaces, . or .. segments.',
    bad_upstream: 'Give an http:// or https:// URL with a host and no query or fragment.',
    bad_timeout: 'Give 1 to 3,600,000 ms.',
    bad_credential: 'Enter the credential, or keep the stored one.',
  },
  {
    'zh-CN': {
      title: '路由',
      subtitle: '路由把某个路径前缀下的调用转发到上游服务，按最长前缀匹配。',
      create_route: '创建路由',
      create_title: '创建路由',
      edit_title: '编辑路由 {{name}}',
      filter: '筛选',
      filter_placeholder: '名称、前缀或上游地址',
      owner: '所属',
      any_owner: '全部路由',
      shared_only: '共享路由',
      col_name: '名称',
      col_prefix: '前缀',
      col_upstream: '上游',
      col_kind: '类型',
      col_team: '团队',
      col_strip: '去除前缀',
      col_timeouts: '超时',
      col_credential: '凭据',
      col_actions: '操作',
      shared: '共享',
      disabled: '已停用',
      configured: '已配置',
      not_configured: '无',
      timeouts_value: '{{connect}} / {{total}}',
      timeouts_title: '连接超时 {{connect}}，响应超时 {{total}}',
      empty: '还没有路由。',
      empty_create: '创建路由，把上游服务放到网关后面。',
      empty_filtered: '没有符合筛选条件的路由。',
      edit: '编辑',
      edit_label: '编辑 {{name}}',
      delete: '删除',
      delete_label: '删除 {{name}}',
      delete_title: '删除路由 {{name}}？',
      delete_message: '对 {{prefix}} 的调用将返回 404 no_route。引用此路由的密钥将失去它。已记录的用量会保留。',
      deleted: '路由“{{name}}”已删除。',
      created: '路由“{{name}}”已创建。',
      saved: '路由“{{name}}”已保存。',
      name: '名称',
      name_help: '字母、数字、-、_ 和 .（最多 64 个字符）。',
      prefix: '路径前缀',
      prefix_help: '以 / 开头，例如 /openai。对 /openai/… 的调用会进入此路由。',
      upstream: '上游 URL',
      upstream_help: 'http:// 或 https:// 开头的基础 URL，不含查询参数或片段。',
      kind: '类型',
      kind_http: 'HTTP（任意服务）',
      kind_openai: 'OpenAI 兼容（记录模型和 Token）',
      kind_anthropic: 'Anthropic（记录模型和 Token）',
      team: '团队',
      team_shared: '所有团队共享',
      team_fixed: '所属团队不可更改。',
      strip: '转发前去除前缀',
      strip_help: '开启：/openai/v1/chat → 上游/v1/chat。关闭：上游/openai/v1/chat。',
      enabled: '启用',
      enabled_help: '停用的路由会拒绝调用（404），但保留其设置。',
      connect_timeout: '连接超时（毫秒）',
      timeout: '响应超时（毫秒）',
      timeout_help: '同时也是流式响应的空闲超时。',
      credential: '上游凭据',
      credential_help: '由网关发送给上游（OpenAI/HTTP：Authorization: Bearer；Anthropic：x-api-key），客户端只需持有 tollgate 密钥。只写不读。',
      credential_keep: '保留已存储的凭据',
      credential_replace: '替换',
      credential_remove: '移除',
      credential_new: '新凭据',
      credential_stored: '已存储凭据，永不显示。',
      credential_no_master: '存储凭据需要主密钥（TOLLGATE_MASTER_KEY），当前未配置。',
      optional: '可选',
      bad_name: '请使用 1 到 64 个字母、数字、-、_ 或 .',
      bad_prefix: '前缀必须以 / 开头，不能以 / 结尾（“/” 除外），且不能包含 ?、#、空格、. 或 .. 路径段。',
      bad_upstream: '请填写带主机名、不含查询参数或片段的 http:// 或 https:// URL。',
      bad_timeout: '请填写 1 到 3,600,000 毫秒。',
      bad_credential: '请输入凭据，或保留已存储的凭据。',
    },
    'zh-TW': {
      title: '路由',
      subtitle: '路由會把某個路徑前綴下的呼叫轉送到上游服務，依最長前綴比對。',
      create_route: '建立路由',
      create_title: '建立路由',
      edit_title: '編輯路由 {{name}}',
      filter: '篩選',
      filter_placeholder: '名稱、前綴或上游位址',
      owner: '所屬',
      any_owner: '全部路由',
      shared_only: '共用路由',
      col_name: '名稱',
      col_prefix: '前綴',
      col_upstream: '上游',
      col_kind: '類型',
      col_team: '團隊',
      col_strip: '移除前綴',
      col_timeouts: '逾時',
      col_credential: '憑證',
      col_actions: '操作',
      shared: '共用',
      disabled: '已停用',
      configured: '已設定',
      not_configured: '無',
      timeouts_value: '{{connect}} / {{total}}',
      timeouts_title: '連線逾時 {{connect}}，回應逾時 {{total}}',
      empty: '還沒有路由。',
      empty_create: '建立路由，把上游服務放到閘道後面。',
      empty_filtered: '沒有符合篩選條件的路由。',
      edit: '編輯',
      edit_label: '編輯 {{name}}',
      delete: '刪除',
      delete_label: '刪除 {{name}}',
      delete_title: '刪除路由 {{name}}？',
      delete_message: '對 {{prefix}} 的呼叫將回傳 404 no_route。引用此路由的金鑰將失去它。已記錄的用量會保留。',
      deleted: '路由「{{name}}」已刪除。',
      created: '路由「{{name}}」已建立。',
      saved: '路由「{{name}}」已儲存。',
      name: '名稱',
      name_help: '英文字母、數字、-、_ 和 .（最多 64 個字元）。',
      prefix: '路徑前綴',
      prefix_help: '以 / 開頭，例如 /openai。對 /openai/… 的呼叫會進入此路由。',
      upstream: '上游 URL',
      upstream_help: 'http:// 或 https:// 開頭的基礎 URL，不含查詢參數或片段。',
      kind: '類型',
      kind_http: 'HTTP（任何服務）',
      kind_openai: '相容 OpenAI（記錄模型與 Token）',
      kind_anthropic: 'Anthropic（記錄模型與 Token）',
      team: '團隊',
      team_shared: '所有團隊共用',
      team_fixed: '所屬團隊無法變更。',
      strip: '轉送前移除前綴',
      strip_help: '開啟：/openai/v1/chat → 上游/v1/chat。關閉：上游/openai/v1/chat。',
      enabled: '啟用',
      enabled_help: '停用的路由會拒絕呼叫（404），但保留其設定。',
      connect_timeout: '連線逾時（毫秒）',
      timeout: '回應逾時（毫秒）',
      timeout_help: '同時也是串流回應的閒置逾時。',
      credential: '上游憑證',
      credential_help: '由閘道傳送給上游（OpenAI/HTTP：Authorization: Bearer；Anthropic：x-api-key），用戶端只需持有 tollgate 金鑰。只寫不讀。',
      credential_keep: '保留已儲存的憑證',
      credential_replace: '取代',
      credential_remove: '移除',
      credential_new: '新憑證',
      credential_stored: '已儲存憑證，永不顯示。',
      credential_no_master: '儲存憑證需要主金鑰（TOLLGATE_MASTER_KEY），目前未設定。',
      optional: '選填',
      bad_name: '請使用 1 到 64 個英文字母、數字、-、_ 或 .',
      bad_prefix: '前綴必須以 / 開頭，不能以 / 結尾（「/」除外），且不能包含 ?、#、空格、. 或 .. 路徑段。',
      bad_upstream: '請填寫含主機名稱、不含查詢參數或片段的 http:// 或 https:// URL。',
      bad_timeout: '請填寫 1 到 3,600,000 毫秒。',
      bad_credential: '請輸入憑證，或保留已儲存的憑證。',
    },
  },
);

type RouteView = Schemas['RouteView'];

// ---------------------------------------------------------------------------------------------
// Pure helpers

export interface RouteForm {
  /** '' for shared. */
  team: string;
  name: string;
  prefix: string;
  upstream_url: string;
  kind: string;
  strip_prefix: boolean;
  enabled: boolean;
  connect_timeout_ms: string;
  timeout_ms: string;
  /** keep | set | remove */
  credential: 'keep' | 'set' | 'remove';
  upstream_key: string;
}

export function formOf(route: RouteView | null, defaultTeam: string): RouteForm {
  return {
    team: route ? (route.team_id ? String(route.team_id) : '') : defaultTeam,
    name: route?.name ?? '',
    prefix: route?.prefix ?? '',
    upstream_url: route?.upstream_url ?? '',
    kind: route?.kind ?? 'http',
    strip_prefix: route?.strip_prefix ?? true,
    enabled: route?.enabled ?? true,
    connect_timeout_ms: String(route?.connect_timeout_ms ?? 5000),
    timeout_ms: String(route?.timeout_ms ?? 300000),
    credential: route?.has_credential ? 'keep' : 'set',
    upstream_key: '',
  };
}

export type RouteErrors = Partial<
  Record<keyof RouteForm, 'bad_name' | 'bad_prefix' | 'bad_upstream' | 'bad_timeout' | 'bad_credential'>
>;

/**
 * The same checks as the server, so that mistakes show at the field before a round trip.
 * `replacing`: a stored credential is being replaced, so the new one may not be empty.
 */
export function validateRoute(f: RouteForm, replacing = false): RouteErrors {
  const errors: RouteErrors = {};
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(f.name)) errors.name = 'bad_name';
  const p = f.prefix;
  if (
    !p.startsWith('/') ||
    (p.length > 1 && p.endsWith('/')) ||
    /[?# ]/.test(p) ||
    p.split('/').some((s) => s === '.' || s === '..') ||
    p.length > 256
  )
    errors.prefix = 'bad_prefix';
  const m = /^https?:\/\/([^/]*)/.exec(f.upstream_url);
  if (!m || !m[1] || /[@ ]/.test(m[1]) || /[?#]/.test(f.upstream_url)) errors.upstream_url = 'bad_upstream';
  for (const k of ['connect_timeout_ms', 'timeout_ms'] as const) {
    const n = Number(f[k]);
    if (!/^\d+$/.test(f[k]) || n < 1 || n > 3_600_000) errors[k] = 'bad_timeout';
  }
  if (f.credential === 'set' && (f.upstream_key.length > 4096 || (replacing && !f.upstream_key)))
    errors.upstream_key = 'bad_credential';
  return errors;
}

/** The PATCH body: only what changed. */
export function routePatch(before: RouteView, f: RouteForm): Schemas['RoutePatch'] {
  const body: Schemas['RoutePatch'] = {};
  if (f.name !== before.name) body.name = f.name;
  if (f.prefix !== before.prefix) body.prefix = f.prefix;
  if (f.upstream_url !== before.upstream_url) body.upstream_url = f.upstream_url;
  if (f.kind !== before.kind) body.kind = f.kind;
  if (f.strip_prefix !== before.strip_prefix) body.strip_prefix = f.strip_prefix;
  if (f.enabled !== before.enabled) body.enabled = f.enabled;
  if (Number(f.connect_timeout_ms) !== before.connect_timeout_ms) body.connect_timeout_ms = Number(f.connect_timeout_ms);
  if (Number(f.timeout_ms) !== before.timeout_ms) body.timeout_ms = Number(f.timeout_ms);
  if (f.credential === 'set' && f.upstream_key) body.upstream_key = f.upstream_key;
  if (f.credential === 'remove' && before.has_credential) body.upstream_key = null;
  return body;
}

/** Who may change a route: owners/admins of its team; instance admins for shared ones. */
export function mayManageRoute(can: Permissions, route: Pick<RouteView, 'team_id'>): boolean {
  return route.team_id === null || route.team_id === undefined ? can.isAdmin : can.canManage(route.team_id);
}

function fieldOf(error: unknown): string | null {
  if (!(error instanceof ApiError)) return null;
  if (error.code === 'no_master_key') return 'upstream_key';
  if (error.field === 'team_id') return 'team';
  return error.field ?? null;
}

// ---------------------------------------------------------------------------------------------
// The page

export default function RoutesPage() {
  const { t } = useTranslation([ns, 'common']);
  const can = usePermissions();
  const routes = useRoutes();
  const teams = useTeams();
  const settings = useSettings({ enabled: can.isAdmin, staleTime: REFERENCE_STALE_MS });
  const ids = useId();
  const [text, setText] = useState('');
  const [owner, setOwner] = useState('');
  const [editing, setEditing] = useState<RouteView | 'new' | null>(null);
  const [deleting, setDeleting] = useState<RouteView | null>(null);

  const teamNames = useMemo(() => {
    const names = new Map<number, string>();
    for (const x of teams.data ?? []) names.set(x.id, x.name);
    return names;
  }, [teams.data]);
  const managedTeams = useMemo(
    () => (teams.data ?? can.managedTeams).filter((x) => can.canManage(x.id)).map((x) => ({ id: x.id, name: x.name })),
    [teams.data, can],
  );
  const mayCreate = can.isAdmin || managedTeams.length > 0;
  const masterKey = can.isAdmin ? settings.data?.master_key : undefined;

  const list = routes.data ?? [];
  const needle = text.trim().toLowerCase();
  const shown = list
    .filter((r) =>
      owner === '' ? true : owner === 'shared' ? r.team_id === null || r.team_id === undefined : r.team_id === Number(owner),
    )
    .filter(
      (r) =>
        !needle ||
        r.name.toLowerCase().includes(needle) ||
        r.prefix.toLowerCase().includes(needle) ||
        r.upstream_url.toLowerCase().includes(needle),
    )
    .sort((a, b) => a.prefix.localeCompare(b.prefix));
  const anyActions = shown.some((r) => mayManageRoute(can, r));

  return (
    <div className="routes-page">
      <PageHeader title={t('title')} subtitle={t('subtitle')}>
        {mayCreate && (
          <button type="button" className="primary" onClick={() => setEditing('new')}>
            {t('create_route')}
          </button>
        )}
      </PageHeader>

      {list.length > 0 && (
        <div className="filters" role="search">
          <div className="filter-field routes-filter-text">
            <label htmlFor={`${ids}-q`}>{t('filter')}</label>
            <input
              id={`${ids}-q`}
              type="search"
              value={text}
              placeholder={t('filter_placeholder')}
              onChange={(e) => setText(e.target.value)}
            />
          </div>
          <div className="filter-field">
            <label htmlFor={`${ids}-owner`}>{t('owner')}</label>
            <select id={`${ids}-owner`} value={owner} onChange={(e) => setOwner(e.target.value)}>
              <option value="">{t('any_owner')}</option>
              <option value="shared">{t('shared_only')}</option>
              {[...teamNames.entries()].map(([id, name]) => (
                <option key={id} value={id}>
                  {name}
                </option>
              ))}
            </select>
          </div>
        </div>
      )}

      {routes.isPending ? (
        <Loading />
      ) : routes.isError ? (
        <ErrorState error={routes.error} onRetry={() => void routes.refetch()} />
      ) : list.length === 0 ? (
        <Empty>
          <p>{t('empty')}</p>
          {mayCreate && <p className="muted">{t('empty_create')}</p>}
        </Empty>
      ) : shown.length === 0 ? (
        <Empty>{t('empty_filtered')}</Empty>
      ) : (
        <div className="table-wrap">
          <table className="routes-table">
            <thead>
              <tr>
                <th scope="col">{t('col_name')}</th>
                <th scope="col">{t('col_prefix')}</th>
                <th scope="col">{t('col_upstream')}</th>
                <th scope="col">{t('col_kind')}</th>
                <th scope="col">{t('col_team')}</th>
                <th scope="col">{t('col_strip')}</th>
                <th scope="col" className="routes-timeouts-col">
                  {t('col_timeouts')}
                </th>
                <th scope="col">{t('col_credential')}</th>
                {anyActions && (
                  <th scope="col">
                    <span className="sr-only">{t('col_actions')}</span>
                  </th>
                )}
              </tr>
            </thead>
            <tbody>
              {shown.map((r) => (
                <tr key={r.id} className={r.enabled ? undefined : 'routes-disabled'}>
                  <td title={dateTime(r.updated_at)}>
                    <strong>{r.name}</strong> {!r.enabled && <span className="badge warning">{t('disabled')}</span>}
                  </td>
                  <td>
                    <code>{r.prefix}</code>
                  </td>
                  <td className="routes-upstream" title={r.upstream_url}>
                    <code>{r.upstream_url}</code>
                  </td>
                  <td>
                    <span className={`badge${r.kind === 'http' ? '' : ' info'}`}>{r.kind}</span>
                  </td>
                  <td>
                    {r.team_id ? (
                      (teamNames.get(r.team_id) ?? `#${r.team_id}`)
                    ) : (
                      <span className="badge">{t('shared')}</span>
                    )}
                  </td>
                  <td>{r.strip_prefix ? t('common:yes') : t('common:no')}</td>
                  <td
                    className="routes-timeouts-col muted"
                    title={t('timeouts_title', { connect: millis(r.connect_timeout_ms), total: millis(r.timeout_ms) })}
                  >
                    {t('timeouts_value', { connect: millis(r.connect_timeout_ms), total: millis(r.timeout_ms) })}
                  </td>
                  <td>
                    {r.has_credential ? (
                      <span className="badge success">{t('configured')}</span>
                    ) : (
                      <span className="muted">{t('not_configured')}</span>
                    )}
                  </td>
                  {anyActions && (
                    <td>
                      {mayManageRoute(can, r) && (
                        <div className="actions">
                          <button
                            type="button"
                            className="small"
                            aria-label={t('edit_label', { name: r.name })}
                            onClick={() => setEditing(r)}
                          >
                            {t('edit')}
                          </button>
                          <button
                            type="button"
                            className="small danger"
                            aria-label={t('delete_label', { name: r.name })}
                            onClick={() => setDeleting(r)}
                          >
                            {t('delete')}
                          </button>
                        </div>
                      )}
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}

      {editing && (
        <RouteDialog
          route={editing === 'new' ? null : editing}
          teams={managedTeams}
          allowShared={can.isAdmin}
          teamName={editing !== 'new' && editing.team_id ? teamNames.get(editing.team_id) : undefined}
          masterKey={masterKey}
          onClose={() => setEditing(null)}
        />
      )}
      <DeleteRouteDialog route={deleting} onClose={() => setDeleting(null)} />
    </div>
  );
}

// ---------------------------------------------------------------------------------------------
// Create / edit

function RouteDialog({
  route,
  teams,
  allowShared,
  teamName,
  masterKey,
  onClose,
}: {
  route: RouteView | null;
  teams: { id: number; name: string }[];
  allowShared: boolean;
  teamName?: string;
  masterKey?: boolean;
  onClose: () => void;
}) {
  const { t } = useTranslation([ns, 'common']);
  const queries = useQueryClient();
  const toast = useToast();
  const [form, setForm] = useState<RouteForm>(() => formOf(route, allowShared ? '' : String(teams[0]?.id ?? '')));
  const [checked, setChecked] = useState(false);
  const set = <K extends keyof RouteForm>(k: K, v: RouteForm[K]) => setForm((f) => ({ ...f, [k]: v }));

  const save = useMutation({
    mutationFn: async (f: RouteForm) => {
      if (route) {
        return unwrap(
          client.PATCH('/api/v1/routes/{id}', { params: { path: { id: route.id } }, body: routePatch(route, f) }),
        );
      }
      return unwrap(
        client.POST('/api/v1/routes', {
          body: {
            ...(f.team ? { team_id: Number(f.team) } : {}),
            name: f.name,
            prefix: f.prefix,
            upstream_url: f.upstream_url,
            kind: f.kind,
            strip_prefix: f.strip_prefix,
            enabled: f.enabled,
            connect_timeout_ms: Number(f.connect_timeout_ms),
            timeout_ms: Number(f.timeout_ms),
            ...(f.upstream_key ? { upstream_key: f.upstream_key } : {}),
          },
        }),
      );
    },
    onSuccess: (saved) => {
      void queries.invalidateQueries({ queryKey: ['routes'] });
      toast(t(route ? 'saved' : 'created', { name: saved.name }));
      onClose();
    },
  });

  const replacing = !!route?.has_credential;
  const local = checked ? validateRoute(form, replacing) : {};
  const serverField = fieldOf(save.error);
  const errorAt = (k: keyof RouteForm): string | null => {
    const code = local[k];
    if (code) return t(code);
    return serverField === k ? (save.error as ApiError).message : null;
  };
  const invalid = (k: keyof RouteForm) => (errorAt(k) ? true : undefined);

  function submit(e: FormEvent) {
    e.preventDefault();
    setChecked(true);
    if (Object.keys(validateRoute(form, replacing)).length > 0) {
      focusFirstInvalid(e.currentTarget as HTMLFormElement);
      return;
    }
    if (route && Object.keys(routePatch(route, form)).length === 0) {
      onClose();
      return;
    }
    save.mutate(form);
  }

  const noMaster = masterKey === false;
  return (
    <Dialog
      open
      onClose={onClose}
      title={route ? t('edit_title', { name: route.name }) : t('create_title')}
      footer={
        <FormButtons
          onCancel={onClose}
          label={route ? t('common:save') : t('common:create')}
          busy={save.isPending}
          form="route-form"
        />
      }
    >
      <form id="route-form" onSubmit={submit} noValidate>
        {!serverField && <ErrorAlert error={save.error} />}
        <Field label={t('name')} help={t('name_help')} error={errorAt('name')}>
          <input
            value={form.name}
            maxLength={64}
            required
            autoFocus
            spellCheck={false}
            aria-invalid={invalid('name')}
            onChange={(e) => set('name', e.target.value)}
          />
        </Field>
        <Field label={t('prefix')} help={t('prefix_help')} error={errorAt('prefix')}>
          <input
            value={form.prefix}
            maxLength={256}
            required
            placeholder="/openai"
            spellCheck={false}
            className="mono"
            aria-invalid={invalid('prefix')}
            onChange={(e) => set('prefix', e.target.value)}
          />
        </Field>
        <Field label={t('upstream')} help={t('upstream_help')} error={errorAt('upstream_url')}>
          <input
            type="url"
            value={form.upstream_url}
            required
            placeholder="https://api.openai.com"
            spellCheck={false}
            className="mono"
            aria-invalid={invalid('upstream_url')}
            onChange={(e) => set('upstream_url', e.target.value)}
          />
        </Field>
        <Field label={t('kind')} error={errorAt('kind')}>
          <select value={form.kind} aria-invalid={invalid('kind')} onChange={(e) => set('kind', e.target.value)}>
            {ROUTE_KINDS.map((k) => (
              <option key={k} value={k}>
                {t(`kind_${k}`)}
              </option>
            ))}
          </select>
        </Field>
        {route ? (
          <Field label={t('team')} help={t('team_fixed')}>
            <input value={route.team_id ? (teamName ?? `#${route.team_id}`) : t('team_shared')} readOnly disabled />
          </Field>
        ) : (
          <Field label={t('team')} error={errorAt('team')}>
            <select value={form.team} onChange={(e) => set('team', e.target.value)}>
              {allowShared && <option value="">{t('team_shared')}</option>}
              <TeamOptions teams={teams} />
            </select>
          </Field>
        )}
        <div className="field">
          <label className="row">
            <input
              type="checkbox"
              checked={form.strip_prefix}
              aria-describedby="route-strip-help"
              onChange={(e) => set('strip_prefix', e.target.checked)}
            />
            <span>{t('strip')}</span>
          </label>
          <small className="help" id="route-strip-help">
            {t('strip_help')}
          </small>
        </div>
        <div className="field">
          <label className="row">
            <input
              type="checkbox"
              checked={form.enabled}
              aria-describedby="route-enabled-help"
              onChange={(e) => set('enabled', e.target.checked)}
            />
            <span>{t('enabled')}</span>
          </label>
          <small className="help" id="route-enabled-help">
            {t('enabled_help')}
          </small>
        </div>
        <div className="grid routes-timeouts">
          <Field label={t('connect_timeout')} error={errorAt('connect_timeout_ms')}>
            <input
              type="number"
              inputMode="numeric"
              min={1}
              max={3_600_000}
              value={form.connect_timeout_ms}
              aria-invalid={invalid('connect_timeout_ms')}
              onChange={(e) => set('connect_timeout_ms', e.target.value)}
            />
          </Field>
          <Field label={t('timeout')} help={t('timeout_help')} error={errorAt('timeout_ms')}>
            <input
              type="number"
              inputMode="numeric"
              min={1}
              max={3_600_000}
              value={form.timeout_ms}
              aria-invalid={invalid('timeout_ms')}
              onChange={(e) => set('timeout_ms', e.target.value)}
            />
          </Field>
        </div>
        <fieldset className="routes-credential">
          <legend>
            {t('credential')} <span className="muted">({t('optional')})</span>
          </legend>
          <p className="help muted">{t('credential_help')}</p>
          {noMaster && <p className="alert warning">{t('credential_no_master')}</p>}
          {route?.has_credential && (
            <div className="row routes-credential-modes" role="radiogroup" aria-label={t('credential')}>
              <p className="muted" style={{ width: '100%', margin: 0 }}>
                {t('credential_stored')}
              </p>
              {(['keep', 'set', 'remove'] as const).map((mode) => (
                <label key={mode} className="row">
                  <input
                    type="radio"
                    name="credential-mode"
                    checked={form.credential === mode}
                    onChange={() => set('credential', mode)}
                  />
                  {t(mode === 'keep' ? 'credential_keep' : mode === 'set' ? 'credential_replace' : 'credential_remove')}
                </label>
              ))}
            </div>
          )}
          {form.credential === 'set' && (
            <Field label={t('credential_new')} error={errorAt('upstream_key')}>
              <input
                type="password"
                autoComplete="new-password"
                value={form.upstream_key}
                maxLength={4096}
                disabled={noMaster}
                spellCheck={false}
                aria-invalid={invalid('upstream_key')}
                onChange={(e) => set('upstream_key', e.target.value)}
              />
            </Field>
          )}
          {form.credential !== 'set' && errorAt('upstream_key') && (
            <small className="error" role="alert">
              {errorAt('upstream_key')}
            </small>
          )}
        </fieldset>
      </form>
    </Dialog>
  );
}

function DeleteRouteDialog({ route, onClose }: { route: RouteView | null; onClose: () => void }) {
  const { t } = useTranslation(ns);
  const queries = useQueryClient();
  const toast = useToast();
  return (
    <ConfirmAction
      target={route}
      title={t('delete_title', { name: route?.name ?? '' })}
      message={t('delete_message', { prefix: route?.prefix ?? '' })}
      confirmLabel={t('delete')}
      run={(r) => unwrap(client.DELETE('/api/v1/routes/{id}', { params: { path: { id: r.id } } }))}
      onDone={(r) => {
        void queries.invalidateQueries({ queryKey: ['routes'] });
        void queries.invalidateQueries({ queryKey: ['keys'] });
        toast(t('deleted', { name: r.name }));
      }}
      onClose={onClose}
    />
  );
}
