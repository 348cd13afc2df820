// Users (/users, instance admins only): every account, its teams, and the changes an instance admin
// may make (UserPatch: disable / enable, grant / take admin, rename), plus a shortcut to invite
// someone to a team with a copyable link.
import { useMemo, useState } from 'react';
import { Link } from 'react-router';
import { useMutation, useQueries, useQueryClient } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { client, unwrap, type Schemas } from '../api/client';
import { teamMembersQuery, useTeams, useUsers } from '../api/queries';
import { usePermissions } from '../auth';
import { defineMessages } from '../i18n';
import { date, dateTime, integer, relative } from '../format';
import { ConfirmDialog, Dialog, ErrorAlert, NameForm, QueryState, StatCard, useToast } from '../components/ui';
import { InviteDialog } from './Teams/InviteDialog';
import { isRole, type Role } from '../api/vocabulary';

const ns = defineMessages(
  'users',
  {
    title: 'Users',
    intro: 'Every account on this instance. Invite people to a team to create their account; disable an account to stop its sessions and access tokens at once.',
    invite: 'Invite user',
    total: 'Users',
    admins: 'Instance admins',
    disabled: 'Disabled',
    search: 'Search users',
    search_placeholder: 'Name or e-mail',
    status: 'Status',
    status_all: 'All',
    status_active: 'Active',
    status_disabled: 'Disabled',
    status_pending: 'No password yet',
    status_admins: 'Instance admins',
    col_user: 'User',
    col_status: 'Status',
    col_teams: 'Teams',
    col_last_login: 'Last sign-in',
    created_on: 'created {{date}}',
    col_actions: 'Actions',
    admin: 'Admin',
    active: 'Active',
    disabled_since: 'Disabled since {{when}}',
    no_password: 'No password yet',
    no_password_help: 'Invited but has not accepted the invitation yet.',
    never: 'Never',
    you: 'you',
    no_teams: 'No team',
    rename: 'Rename',
    rename_label: 'Rename {{email}}',
    rename_title: 'Rename {{email}}',
    display_name: 'Display name',
    display_name_help: '1 to 100 characters, shown in the console and the audit log.',
    renamed: '{{email}} renamed',
    disable: 'Disable',
    disable_label: 'Disable {{email}}',
    disable_title: 'Disable {{email}}?',
    disable_message: 'Their sessions and personal access tokens stop working at once and they cannot sign in. Their keys keep working; revoke them separately if needed.',
    disabled_toast: '{{email}} disabled',
    enable: 'Enable',
    enable_label: 'Enable {{email}}',
    enabled_toast: '{{email}} enabled',
    make_admin: 'Make admin',
    make_admin_label: 'Make {{email}} an instance admin',
    make_admin_title: 'Make {{email}} an instance admin?',
    make_admin_message: 'Instance admins see and manage every team, user, key, route and setting.',
    made_admin: '{{email}} is now an instance admin',
    remove_admin: 'Remove admin',
    remove_admin_label: 'Remove admin rights of {{email}}',
    remove_admin_title: 'Remove the admin rights of {{email}}?',
    remove_admin_message: 'They keep their team roles but lose access to every other team, the users page and the settings.',
    removed_admin: '{{email}} is no longer an instance admin',
    self_help: 'You cannot disable yourself or drop your own admin rights.',
    no_match: 'No user matches these filters.',
  },
  {
    'zh-CN': {
      title: '用户',
      intro: '本实例的所有账户。邀请用户加入团队即可为其创建账户；禁用账户会立即终止其会话和访问令牌。',
      invite: '邀请用户',
      total: '用户',
      admins: '实例管理员',
      disabled: '已禁用',
      search: '搜索用户',
      search_placeholder: '名称或邮箱',
      status: '状态',
      status_all: '全部',
      status_active: '正常',
      status_disabled: '已禁用',
      status_pending: '尚未设置密码',
      status_admins: '实例管理员',
      col_user: '用户',
      col_status: '状态',
      col_teams: '团队',
      col_last_login: '最近登录',
      created_on: '创建于 {{date}}',
      col_actions: '操作',
      admin: '管理员',
      active: '正常',
      disabled_since: '自 {{when}} 起禁用',
      no_password: '尚未设置密码',
      no_password_help: '已被邀请，但尚未接受邀请。',
      never: '从未',
      you: '你',
      no_teams: '无团队',
      rename: '重命名',
      rename_label: '重命名 {{email}}',
      rename_title: '重命名 {{email}}',
      display_name: '显示名称',
      display_name_help: '1 到 100 个字符，显示在控制台和审计日志中。',
      renamed: '已重命名 {{email}}',
      disable: '禁用',
      disable_label: '禁用 {{email}}',
      disable_title: '禁用 {{email}}？',
      disable_message: '其会话和个人访问令牌将立即失效，且无法再登录。其创建的密钥仍可使用；如有需要请单独吊销。',
      disabled_toast: '已禁用 {{email}}',
      enable: '启用',
      enable_label: '启用 {{email}}',
      enabled_toast: '已启用 {{email}}',
      make_admin: '设为管理员',
      make_admin_label: '将 {{email}} 设为实例管理员',
      make_admin_title: '将 {{email}} 设为实例管理员？',
      make_admin_message: '实例管理员可以查看和管理所有团队、用户、密钥、路由和设置。',
      made_admin: '{{email}} 现在是实例管理员',
      remove_admin: '取消管理员',
      remove_admin_label: '取消 {{email}} 的管理员权限',
      remove_admin_title: '取消 {{email}} 的管理员权限？',
      remove_admin_message: '其团队角色保持不变，但将无法再访问其他团队、用户页面和设置。',
      removed_admin: '{{email}} 不再是实例管理员',
      self_help: '你不能禁用自己，也不能取消自己的管理员权限。',
      no_match: '没有符合筛选条件的用户。',
    },
    'zh-TW': {
      title: '使用者',
      intro: '此執行個體的所有帳戶。邀請使用者加入團隊即可為其建立帳戶；停用帳戶會立即終止其工作階段和存取權杖。',
      invite: '邀請使用者',
      total: '使用者',
      admins: '執行個體管理員',
      disabled: '已停用',
      search: '搜尋使用者',
      search_placeholder: '名稱或電子郵件',
      status: '狀態',
      status_all: '全部',
      status_active: '正常',
      status_disabled: '已停用',
      status_pending: '尚未設定密碼',
      status_admins: '執行個體管理員',
      col_user: '使用者',
      col_status: '狀態',
      col_teams: '團隊',
      col_last_login: '最近登入',
      created_on: '建立於 {{date}}',
      col_actions: '操作',
      admin: '管理員',
      active: '正常',
      disabled_since: '自 {{when}} 起停用',
      no_password: '尚未設定密碼',
      no_password_help: '已受邀，但尚未接受邀請。',
      never: '從未',
      you: '你',
      no_teams: '無團隊',
      rename: '重新命名',
      rename_label: '重新命名 {{email}}',
      rename_title: '重新命名 {{email}}',
      display_name: '顯示名稱',
      display_name_help: '1 到 100 個字元，顯示於主控台和稽核日誌中。',
      renamed: '已重新命名 {{email}}',
      disable: '停用',
      disable_label: '停用 {{email}}',
      disable_title: '停用 {{email}}？',
      disable_message: '其工作階段和個人存取權杖將立即失效，且無法再登入。其建立的金鑰仍可使用；如有需要請另行撤銷。',
      disabled_toast: '已停用 {{email}}',
      enable: '啟用',
      enable_label: '啟用 {{email}}',
      enabled_toast: '已啟用 {{email}}',
      make_admin: '設為管理員',
      make_admin_label: '將 {{email}} 設為執行個體管理員',
      make_admin_title: '將 {{email}} 設為執行個體管理員？',
      make_admin_message: '執行個體管理員可以檢視和管理所有團隊、使用者、金鑰、路由和設定。',
      made_admin: '{{email}} 現在是執行個體管理員',
      remove_admin: '取消管理員',
      remove_admin_label: '取消 {{email}} 的管理員權限',
      remove_admin_title: '取消 {{email}} 的管理員權限？',
      remove_admin_message: '其團隊角色保持不變，但將無法再存取其他團隊、使用者頁面和設定。',
      removed_admin: '{{email}} 不再是執行個體管理員',
      self_help: '你不能停用自己，也不能取消自己的管理員權限。',
      no_match: '沒有符合篩選條件的使用者。',
    },
  },
);

type User = Schemas['UserView'];
type Status = 'all' | 'active' | 'disabled' | 'pending' | 'admins';
type Pending = { user: User; change: 'disable' | 'make_admin' | 'remove_admin' };

/** Whether `user` passes the search text and status filter. */
export function matchesUser(user: User, search: string, status: Status): boolean {
  const q = search.trim().toLowerCase();
  if (q && !user.email.toLowerCase().includes(q) && !user.display_name.toLowerCase().includes(q)) return false;
  switch (status) {
    case 'active':
      return user.disabled_at == null && user.has_password;
    case 'disabled':
      return user.disabled_at != null;
    case 'pending':
      return !user.has_password;
    case 'admins':
      return user.is_admin;
    default:
      return true;
  }
}

export default function UsersPage() {
  const { t } = useTranslation([ns, 'common']);
  const can = usePermissions();
  const toast = useToast();
  const queries = useQueryClient();
  const [search, setSearch] = useState('');
  const [status, setStatus] = useState<Status>('all');
  const [inviting, setInviting] = useState(false);
  const [renaming, setRenaming] = useState<User | null>(null);
  const [pending, setPending] = useState<Pending | null>(null);

  const users = useUsers();
  const teams = useTeams();
  const memberLists = useQueries({ queries: (teams.data ?? []).map((team) => teamMembersQuery(team.id)) });
  const membershipsByUser = useMemo(() => {
    const map = new Map<number, Schemas['MembershipView'][]>();
    for (const q of memberLists) {
      for (const m of q.data ?? []) map.set(m.user_id, [...(map.get(m.user_id) ?? []), m]);
    }
    return map;
  }, [memberLists]);
  const teamsLoaded = memberLists.every((q) => !q.isPending) && !teams.isPending;

  const patch = useMutation({
    mutationFn: ({ id, body }: { id: number; body: Schemas['UserPatch'] }) =>
      unwrap(client.PATCH('/api/v1/users/{id}', { params: { path: { id } }, body })),
    onSuccess: (user, { body }) => {
      queries.setQueryData<User[]>(['users'], (list) => list?.map((u) => (u.id === user.id ? user : u)));
      void queries.invalidateQueries({ queryKey: ['users'] });
      const email = user.email;
      if (body.disabled === true) toast(t('disabled_toast', { email }));
      else if (body.disabled === false) toast(t('enabled_toast', { email }));
      else if (body.is_admin === true) toast(t('made_admin', { email }));
      else if (body.is_admin === false) toast(t('removed_admin', { email }));
      setPending(null);
    },
  });

  const pendingText = pending && {
    disable: {
      title: t('disable_title', { email: pending.user.email }),
      message: t('disable_message'),
      confirm: t('disable'),
      body: { disabled: true },
    },
    make_admin: {
      title: t('make_admin_title', { email: pending.user.email }),
      message: t('make_admin_message'),
      confirm: t('make_admin'),
      body: { is_admin: true },
    },
    remove_admin: {
      title: t('remove_admin_title', { email: pending.user.email }),
      message: t('remove_admin_message'),
      confirm: t('remove_admin'),
      body: { is_admin: false },
    },
  }[pending.change];

  const inviteTeams = (teams.data ?? []).map((x) => ({
    id: x.id,
    name: x.name,
    role: (isRole(x.role) ? x.role : null) as Role | null,
  }));

  return (
    <>
      <div className="page-header">
        <h1>{t('title')}</h1>
        <span className="spacer" />
        <button type="button" className="primary" onClick={() => setInviting(true)} disabled={!teams.data?.length}>
          {t('invite')}
        </button>
      </div>
      <p className="muted" style={{ marginTop: 0 }}>
        {t('intro')}
      </p>
      <ErrorAlert error={patch.error && !pending ? patch.error : null} />
      <QueryState query={users}>
        {(list) => {
          const shown = list.filter((u) => matchesUser(u, search, status));
          return (
            <>
              <div
                className="grid cards"
                style={{ marginBottom: '1rem', gridTemplateColumns: 'repeat(auto-fit, minmax(140px, 1fr))' }}
              >
                <StatCard label={t('total')} value={integer(list.length)} />
                <StatCard label={t('admins')} value={integer(list.filter((u) => u.is_admin).length)} />
                <StatCard label={t('disabled')} value={integer(list.filter((u) => u.disabled_at != null).length)} />
                <StatCard label={t('no_password')} value={integer(list.filter((u) => !u.has_password).length)} />
              </div>
              <div className="filters" role="search">
                <label>
                  {t('search')}
                  <input
                    type="search"
                    value={search}
                    placeholder={t('search_placeholder')}
                    onChange={(e) => setSearch(e.target.value)}
                  />
                </label>
                <label>
                  {t('status')}
                  <select value={status} onChange={(e) => setStatus(e.target.value as Status)}>
                    <option value="all">{t('status_all')}</option>
                    <option value="active">{t('status_active')}</option>
                    <option value="disabled">{t('status_disabled')}</option>
                    <option value="pending">{t('status_pending')}</option>
                    <option value="admins">{t('status_admins')}</option>
                  </select>
                </label>
              </div>
              {shown.length === 0 ? (
                <div className="state empty">{t('no_match')}</div>
              ) : (
                <div className="table-wrap">
                  <table>
                    <thead>
                      <tr>
                        <th>{t('col_user')}</th>
                        <th>{t('col_status')}</th>
                        <th>{t('col_teams')}</th>
                        <th>{t('col_last_login')}</th>
                        <th className="num">{t('col_actions')}</th>
                      </tr>
                    </thead>
                    <tbody>
                      {shown.map((u) => {
                        const self = u.id === can.userId;
                        const memberships = membershipsByUser.get(u.id) ?? [];
                        return (
                          <tr key={u.id}>
                            <td>
                              <div className="row" style={{ gap: '0.35rem', flexWrap: 'nowrap' }}>
                                <span>
                                  {u.display_name || u.email}
                                  {self && <span className="muted"> ({t('you')})</span>}
                                </span>
                                {u.is_admin && <span className="badge info">{t('admin')}</span>}
                              </div>
                              <div className="muted mono">{u.email}</div>
                            </td>
                            <td>
                              {u.disabled_at != null ? (
                                <span className="badge danger" title={t('disabled_since', { when: dateTime(u.disabled_at) })}>
                                  {t('disabled')}
                                </span>
                              ) : !u.has_password ? (
                                <span className="badge warning" title={t('no_password_help')}>
                                  {t('no_password')}
                                </span>
                              ) : (
                                <span className="badge success">{t('active')}</span>
                              )}
                            </td>
                            <td>
                              {memberships.length ? (
                                <div className="row" style={{ gap: '0.25rem' }}>
                                  {memberships.map((m) => (
                                    <Link
                                      key={m.team_id}
                                      to={`/teams/${m.team_id}`}
                                      className="badge"
                                      style={{ textDecoration: 'none' }}
                                      title={isRole(m.role) ? t(`common:role_${m.role}`) : m.role}
                                    >
                                      {m.team_name} · {isRole(m.role) ? t(`common:role_${m.role}`) : m.role}
                                    </Link>
                                  ))}
                                </div>
                              ) : (
                                <span className="muted">{teamsLoaded ? t('no_teams') : '…'}</span>
                              )}
                            </td>
                            <td style={{ whiteSpace: 'nowrap' }}>
                              <div title={u.last_login_at ? dateTime(u.last_login_at) : undefined}>
                                {u.last_login_at ? relative(u.last_login_at) : <span className="muted">{t('never')}</span>}
                              </div>
                              <div className="muted" style={{ fontSize: '0.8rem' }} title={dateTime(u.created_at)}>
                                {t('created_on', { date: date(u.created_at) })}
                              </div>
                            </td>
                            <td>
                              <div className="actions" style={{ flexWrap: 'nowrap' }}>
                                <button
                                  type="button"
                                  className="small"
                                  aria-label={t('rename_label', { email: u.email })}
                                  onClick={() => setRenaming(u)}
                                >
                                  {t('rename')}
                                </button>
                                {!self &&
                                  (u.is_admin ? (
                                    <button
                                      type="button"
                                      className="small"
                                      aria-label={t('remove_admin_label', { email: u.email })}
                                      onClick={() => setPending({ user: u, change: 'remove_admin' })}
                                    >
                                      {t('remove_admin')}
                                    </button>
                                  ) : (
                                    <button
                                      type="button"
                                      className="small"
                                      aria-label={t('make_admin_label', { email: u.email })}
                                      onClick={() => setPending({ user: u, change: 'make_admin' })}
                                    >
                                      {t('make_admin')}
                                    </button>
                                  ))}
                                {!self &&
                                  (u.disabled_at != null ? (
                                    <button
                                      type="button"
                                      className="small"
                                      aria-label={t('enable_label', { email: u.email })}
                                      disabled={patch.isPending}
                                      onClick={() => patch.mutate({ id: u.id, body: { disabled: false } })}
                                    >
                                      {t('enable')}
                                    </button>
                                  ) : (
                                    <button
                                      type="button"
                                      className="small danger"
                                      aria-label={t('disable_label', { email: u.email })}
                                      onClick={() => setPending({ user: u, change: 'disable' })}
                                    >
                                      {t('disable')}
                                    </button>
                                  ))}
                              </div>
                            </td>
                          </tr>
                        );
                      })}
                    </tbody>
                  </table>
                </div>
              )}
              <p className="muted" style={{ fontSize: '0.8rem' }}>
                {t('self_help')}
              </p>
            </>
          );
        }}
      </QueryState>
      <InviteDialog open={inviting} onClose={() => setInviting(false)} teams={inviteTeams} />
      <RenameDialog user={renaming} onClose={() => setRenaming(null)} />
      <ConfirmDialog
        open={pending !== null}
        title={pendingText?.title ?? ''}
        message={pendingText?.message ?? ''}
        confirmLabel={pendingText?.confirm ?? ''}
        busy={patch.isPending}
        error={patch.error}
        onConfirm={() => pending && pendingText && patch.mutate({ id: pending.user.id, body: pendingText.body })}
        onClose={() => {
          patch.reset();
          setPending(null);
        }}
      />
    </>
  );
}

function RenameDialog({ user, onClose }: { user: User | null; onClose: () => void }) {
  const { t } = useTranslation(ns);
  return (
    <Dialog open={user !== null} onClose={onClose} title={t('rename_title', { email: user?.email })}>
      {user && <RenameForm user={user} onClose={onClose} />}
    </Dialog>
  );
}

function RenameForm({ user, onClose }: { user: User; onClose: () => void }) {
  const { t } = useTranslation([ns, 'common']);
  const toast = useToast();
  const queries = useQueryClient();
  const rename = useMutation({
    mutationFn: (name: string) =>
      unwrap(client.PATCH('/api/v1/users/{id}', { params: { path: { id: user.id } }, body: { display_name: name } })),
    onSuccess: (u) => {
      queries.setQueryData<User[]>(['users'], (list) => list?.map((x) => (x.id === u.id ? u : x)));
      void queries.invalidateQueries({ queryKey: ['users'] });
      void queries.invalidateQueries({ queryKey: ['team-members'] });
      toast(t('renamed', { email: u.email }));
    },
  });
  return (
    <NameForm
      label={t('display_name')}
      help={t('display_name_help')}
      field="display_name"
      maxLength={100}
      initial={user.display_name}
      submitLabel={t('common:save')}
      onClose={onClose}
      onSubmit={(name) => rename.mutateAsync(name)}
    />
  );
}
