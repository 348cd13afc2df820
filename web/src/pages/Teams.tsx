// Teams (/teams) and one team (/teams/:id): members with roles, invitations with copyable links.
// What is offered follows the server's rules (crates/tollgate-core/src/role.rs `may_assign`):
// admins manage members and viewers, owners manage everyone, a team always keeps one owner.
import { useMemo, useState, type FormEvent } from 'react';
import { Link, useNavigate, useParams } from 'react-router';
import { useMutation, useQueries, useQuery, useQueryClient } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { client, unwrap, ApiError, type Schemas } from '../api/client';
import { teamMembersQuery, useTeams, useUsers } from '../api/queries';
import { useAuth, usePermissions } from '../auth';
import { isRole, ROLE_RANK, ROLES, type Role } from '../api/vocabulary';
import { basename } from '../App';
import { defineMessages } from '../i18n';
import { date, dateTime, integer, relative } from '../format';
import {
  ConfirmAction,
  ConfirmDialog,
  CopyButton,
  Dialog,
  Empty,
  ErrorAlert,
  ErrorState,
  Field,
  FormButtons,
  Loading,
  NameForm,
  QueryState,
  TeamOptions,
  useToast,
} from '../components/ui';

const ns = defineMessages(
  'teams',
  {
    title: 'Teams',
    intro: 'Teams own keys and routes. Owners and admins manage a team’s keys, routes and members; members manage the keys they created; viewers read.',
    create_team: 'Create team',
    create_title: 'Create team',
    name: 'Name',
    name_help: '1 to 64 letters, digits, “-”, “_” or “.”.',
    created: 'Team {{name}} created',
    rename: 'Rename',
    rename_title: 'Rename team',
    renamed: 'Team renamed to {{name}}',
    delete_team: 'Delete team',
    delete_title: 'Delete team {{name}}?',
    delete_message: 'The team, its members and its invitations are removed. A team that still owns keys or routes cannot be deleted: delete or move them first.',
    deleted: 'Team {{name}} deleted',
    col_team: 'Team',
    col_your_role: 'Your role',
    col_members: 'Members',
    col_created: 'Created',
    col_actions: 'Actions',
    instance_admin: 'Instance admin',
    no_teams: 'You are not in any team yet. Ask a team owner for an invitation.',
    all_teams: '← Teams',
    members: 'Members',
    members_help: 'Admins manage members and viewers; owners manage everyone. A team always keeps one owner.',
    col_member: 'Member',
    col_role: 'Role',
    col_joined: 'Joined',
    you: 'you',
    role_of: 'Role of {{email}}',
    remove: 'Remove',
    remove_label: 'Remove {{email}}',
    remove_title: 'Remove {{email}}?',
    remove_message: '{{email}} loses access to the team’s keys, routes and usage. Their account stays.',
    remove_self_message: 'You are removing yourself: you lose access to this team.',
    removed: '{{email}} removed',
    role_changed: '{{email}} is now {{role}}',
    last_owner: 'Last owner',
    last_owner_help: 'The last owner cannot be removed or demoted: make someone else owner first.',
    self_role_title: 'Change your own role?',
    self_role_message: 'You are changing your own role to {{role}}. You may no longer be able to manage this team afterwards.',
    change_role: 'Change role',
    add_member: 'Add member',
    add_title: 'Add an existing user',
    add_help: 'Users who already have an account. Invite anyone else by e-mail.',
    user: 'User',
    no_users_left: 'Every user is already a member of this team.',
    added: '{{email}} added as {{role}}',
    invitations: 'Invitations',
    invitations_help: 'Pending invitations. A link is shown only when it is created; withdraw an invitation and create a new one if the link was lost.',
    invite: 'Invite member',
    invite_title: 'Invite to team',
    email: 'E-mail',
    role: 'Role',
    team: 'Team',
    valid_for: 'Link valid for',
    days_1: '1 day',
    days_7: '7 days',
    days_14: '14 days',
    days_30: '30 days',
    create_invitation: 'Create invitation',
    creating: 'Creating…',
    invitation_link: 'Invitation link',
    copy_link: 'Copy link',
    invitation_created: 'Invitation for {{email}} created. Send them this link: it is shown only now, works once, and expires {{expires}}.',
    invite_another: 'Invite another',
    done: 'Done',
    col_email: 'E-mail',
    col_expires: 'Expires',
    expired: 'Expired',
    pending: 'Pending',
    withdraw: 'Withdraw',
    withdraw_label: 'Withdraw invitation for {{email}}',
    withdraw_title: 'Withdraw the invitation for {{email}}?',
    withdraw_message: 'Its link stops working at once.',
    withdrawn: 'Invitation withdrawn',
    no_invitations: 'No pending invitations.',
    no_members: 'This team has no members.',
    not_found: 'This team does not exist or you are not in it.',
  },
  {
    'zh-CN': {
      title: '团队',
      intro: '团队拥有密钥和路由。所有者和管理员管理团队的密钥、路由和成员；成员管理自己创建的密钥；只读成员只能查看。',
      create_team: '创建团队',
      create_title: '创建团队',
      name: '名称',
      name_help: '1 到 64 个字母、数字、“-”、“_” 或 “.”。',
      created: '已创建团队 {{name}}',
      rename: '重命名',
      rename_title: '重命名团队',
      renamed: '团队已重命名为 {{name}}',
      delete_team: '删除团队',
      delete_title: '删除团队 {{name}}？',
      delete_message: '团队及其成员和邀请都将被移除。仍拥有密钥或路由的团队无法删除：请先删除或转移它们。',
      deleted: '已删除团队 {{name}}',
      col_team: '团队',
      col_your_role: '你的角色',
      col_members: '成员数',
      col_created: '创建时间',
      col_actions: '操作',
      instance_admin: '实例管理员',
      no_teams: '你还没有加入任何团队。请向团队所有者索取邀请。',
      all_teams: '← 团队',
      members: '成员',
      members_help: '管理员可管理成员和只读成员；所有者可管理所有人。团队始终至少保留一名所有者。',
      col_member: '成员',
      col_role: '角色',
      col_joined: '加入时间',
      you: '你',
      role_of: '{{email}} 的角色',
      remove: '移除',
      remove_label: '移除 {{email}}',
      remove_title: '移除 {{email}}？',
      remove_message: '{{email}} 将无法再访问团队的密钥、路由和用量。其账户会保留。',
      remove_self_message: '你正在移除自己：你将失去对该团队的访问权限。',
      removed: '已移除 {{email}}',
      role_changed: '{{email}} 现在是{{role}}',
      last_owner: '最后一名所有者',
      last_owner_help: '最后一名所有者不能被移除或降级：请先将其他人设为所有者。',
      self_role_title: '更改你自己的角色？',
      self_role_message: '你正在将自己的角色改为{{role}}。之后你可能无法再管理该团队。',
      change_role: '更改角色',
      add_member: '添加成员',
      add_title: '添加已有用户',
      add_help: '仅限已有账户的用户。其他人请通过邮箱邀请。',
      user: '用户',
      no_users_left: '所有用户都已是该团队的成员。',
      added: '已将 {{email}} 添加为{{role}}',
      invitations: '邀请',
      invitations_help: '待接受的邀请。邀请链接仅在创建时显示一次；如果链接丢失，请撤回邀请并重新创建。',
      invite: '邀请成员',
      invite_title: '邀请加入团队',
      email: '邮箱',
      role: '角色',
      team: '团队',
      valid_for: '链接有效期',
      days_1: '1 天',
      days_7: '7 天',
      days_14: '14 天',
      days_30: '30 天',
      create_invitation: '创建邀请',
      creating: '创建中…',
      invitation_link: '邀请链接',
      copy_link: '复制链接',
      invitation_created: '已为 {{email}} 创建邀请。请将此链接发送给对方：链接仅显示这一次，只能使用一次，将于{{expires}}过期。',
      invite_another: '继续邀请',
      done: '完成',
      col_email: '邮箱',
      col_expires: '过期时间',
      expired: '已过期',
      pending: '待接受',
      withdraw: '撤回',
      withdraw_label: '撤回对 {{email}} 的邀请',
      withdraw_title: '撤回对 {{email}} 的邀请？',
      withdraw_message: '邀请链接将立即失效。',
      withdrawn: '邀请已撤回',
      no_invitations: '没有待接受的邀请。',
      no_members: '该团队没有成员。',
      not_found: '该团队不存在，或你不是其成员。',
    },
    'zh-TW': {
      title: '團隊',
      intro: '團隊擁有金鑰和路由。擁有者和管理員管理團隊的金鑰、路由和成員；成員管理自己建立的金鑰；唯讀成員只能檢視。',
      create_team: '建立團隊',
      create_title: '建立團隊',
      name: '名稱',
      name_help: '1 到 64 個字母、數字、「-」、「_」或「.」。',
      created: '已建立團隊 {{name}}',
      rename: '重新命名',
      rename_title: '重新命名團隊',
      renamed: '團隊已重新命名為 {{name}}',
      delete_team: '刪除團隊',
      delete_title: '刪除團隊 {{name}}？',
      delete_message: '團隊及其成員和邀請都將被移除。仍擁有金鑰或路由的團隊無法刪除：請先刪除或轉移它們。',
      deleted: '已刪除團隊 {{name}}',
      col_team: '團隊',
      col_your_role: '你的角色',
      col_members: '成員數',
      col_created: '建立時間',
      col_actions: '操作',
      instance_admin: '執行個體管理員',
      no_teams: '你尚未加入任何團隊。請向團隊擁有者索取邀請。',
      all_teams: '← 團隊',
      members: '成員',
      members_help: '管理員可管理成員和唯讀成員；擁有者可管理所有人。團隊始終至少保留一位擁有者。',
      col_member: '成員',
      col_role: '角色',
      col_joined: '加入時間',
      you: '你',
      role_of: '{{email}} 的角色',
      remove: '移除',
      remove_label: '移除 {{email}}',
      remove_title: '移除 {{email}}？',
      remove_message: '{{email}} 將無法再存取團隊的金鑰、路由和用量。其帳戶會保留。',
      remove_self_message: '你正在移除自己：你將失去對此團隊的存取權限。',
      removed: '已移除 {{email}}',
      role_changed: '{{email}} 現在是{{role}}',
      last_owner: '最後一位擁有者',
      last_owner_help: '最後一位擁有者不能被移除或降級：請先將其他人設為擁有者。',
      self_role_title: '變更你自己的角色？',
      self_role_message: '你正在將自己的角色變更為{{role}}。之後你可能無法再管理此團隊。',
      change_role: '變更角色',
      add_member: '新增成員',
      add_title: '新增現有使用者',
      add_help: '僅限已有帳戶的使用者。其他人請透過電子郵件邀請。',
      user: '使用者',
      no_users_left: '所有使用者都已是此團隊的成員。',
      added: '已將 {{email}} 新增為{{role}}',
      invitations: '邀請',
      invitations_help: '待接受的邀請。邀請連結僅在建立時顯示一次；如果連結遺失，請撤回邀請並重新建立。',
      invite: '邀請成員',
      invite_title: '邀請加入團隊',
      email: '電子郵件',
      role: '角色',
      team: '團隊',
      valid_for: '連結有效期',
      days_1: '1 天',
      days_7: '7 天',
      days_14: '14 天',
      days_30: '30 天',
      create_invitation: '建立邀請',
      creating: '建立中…',
      invitation_link: '邀請連結',
      copy_link: '複製連結',
      invitation_created: '已為 {{email}} 建立邀請。請將此連結傳送給對方：連結僅顯示這一次，只能使用一次，將於{{expires}}到期。',
      invite_another: '繼續邀請',
      done: '完成',
      col_email: '電子郵件',
      col_expires: '到期時間',
      expired: '已到期',
      pending: '待接受',
      withdraw: '撤回',
      withdraw_label: '撤回對 {{email}} 的邀請',
      withdraw_title: '撤回對 {{email}} 的邀請？',
      withdraw_message: '邀請連結將立即失效。',
      withdrawn: '邀請已撤回',
      no_invitations: '沒有待接受的邀請。',
      no_members: '此團隊沒有成員。',
      not_found: '此團隊不存在，或你不是其成員。',
    },
  },
);

// ---------------------------------------------------------------------------------------------
// Role rules (pure, mirrored from the server)

/**
 * Whether a caller with role `caller` may give `target` to someone whose role is `current`
 * (`null`: not a member yet). Owners may do anything; admins only deal in members and viewers;
 * members and viewers manage nobody. The same rule as `Role::may_assign` on the server.
 */
export function mayAssign(caller: Role | null, current: Role | null, target: Role): boolean {
  if (caller === 'owner') return true;
  if (caller === 'admin') {
    return ROLE_RANK[target] <= ROLE_RANK.member && (current === null || ROLE_RANK[current] <= ROLE_RANK.member);
  }
  return false;
}

/** Roles a caller may invite someone with, or add them as. */
export function invitableRoles(caller: Role | null): Role[] {
  return ROLES.filter((r) => mayAssign(caller, null, r));
}

export interface MemberActions {
  /** Roles offered in the member's role select (always includes the current role when non-empty). */
  roles: Role[];
  /** Whether the role may be changed at all. */
  canChangeRole: boolean;
  /** Whether "Remove" is offered. */
  canRemove: boolean;
  /** The member is the team's only owner: neither demoted nor removed. */
  lastOwner: boolean;
}

/**
 * What the console offers for one member, given the caller's role in the team and how many
 * owners the team has. Removal is "assigning nothing": allowed when the caller could demote the
 * member to viewer. The last owner keeps their role (the server answers 409 otherwise).
 */
export function memberActions(caller: Role | null, target: Role, ownerCount: number): MemberActions {
  const lastOwner = target === 'owner' && ownerCount <= 1;
  if (lastOwner || (caller !== 'owner' && caller !== 'admin')) {
    return { roles: [], canChangeRole: false, canRemove: false, lastOwner };
  }
  const others = ROLES.filter((r) => r !== target && mayAssign(caller, target, r));
  const canChangeRole = others.length > 0;
  return {
    roles: canChangeRole ? ROLES.filter((r) => r === target || others.includes(r)) : [],
    canChangeRole,
    canRemove: mayAssign(caller, target, 'viewer'),
    lastOwner,
  };
}

/** The absolute address of an invitation link (`/invite/<token>`), under `/console` when served there. */
export function invitationUrl(link: string, location: { origin: string; pathname: string } = window.location): string {
  const base = basename(location.pathname);
  const prefix = base === '/' ? '' : base;
  return `${location.origin}${prefix}${link.startsWith('/') ? link : `/${link}`}`;
}

// ---------------------------------------------------------------------------------------------
// Small pieces shared with the Users page

export function RoleBadge({ role }: { role: string }) {
  const { t } = useTranslation('common');
  const tone = role === 'owner' || role === 'admin' ? 'info' : '';
  return <span className={`badge ${tone}`}>{isRole(role) ? t(`role_${role}`) : role}</span>;
}

type TeamChoice = { id: number; name: string; role: Role | null };

/**
 * Invites someone by e-mail to a team and shows the link once, with a Copy button.
 * With one team it invites there; with several the inviter picks the team.
 */
export function InviteDialog({ open, onClose, teams }: { open: boolean; onClose: () => void; teams: TeamChoice[] }) {
  const { t } = useTranslation([ns, 'common']);
  return (
    <Dialog open={open} onClose={onClose} title={t('invite_title')}>
      {/* Remounted on each opening so that the form starts empty. */}
      {open && <InviteForm teams={teams} onClose={onClose} />}
    </Dialog>
  );
}

function InviteForm({ teams, onClose }: { teams: TeamChoice[]; onClose: () => void }) {
  const { t } = useTranslation([ns, 'common']);
  const queries = useQueryClient();
  const [teamId, setTeamId] = useState<number | ''>(teams.length === 1 ? teams[0].id : '');
  const [email, setEmail] = useState('');
  const [role, setRole] = useState<Role>('member');
  const [validFor, setValidFor] = useState('7d');
  const [created, setCreated] = useState<Schemas['InvitationCreated'] | null>(null);
  const team = teams.find((x) => x.id === teamId);
  const roles = invitableRoles(team?.role ?? null);

  const create = useMutation({
    mutationFn: () =>
      unwrap(
        client.POST('/api/v1/teams/{id}/invitations', {
          params: { path: { id: Number(teamId) } },
          body: { email: email.trim(), role, expires_in: validFor },
        }),
      ),
    onSuccess: (inv) => {
      setCreated(inv);
      void queries.invalidateQueries({ queryKey: ['team-invitations', inv.team_id] });
      void queries.invalidateQueries({ queryKey: ['users'] });
    },
  });
  const fieldError = (field: string) =>
    create.error instanceof ApiError && create.error.field === field ? create.error.message : null;

  if (created) {
    const url = invitationUrl(created.link);
    return (
      <div>
        <div className="alert success" role="status">
          {t('invitation_created', { email: created.email, expires: dateTime(created.expires_at) })}
        </div>
        <div className="secret">
          <input
            readOnly
            aria-label={t('invitation_link')}
            value={url}
            className="mono"
            style={{ flex: 1, minWidth: 0, border: 0, background: 'transparent' }}
            onFocus={(e) => e.currentTarget.select()}
          />
          <CopyButton text={url} label={t('copy_link')} />
        </div>
        <div className="row" style={{ justifyContent: 'flex-end', marginTop: '1rem' }}>
          <button
            type="button"
            onClick={() => {
              setCreated(null);
              setEmail('');
              create.reset();
            }}
          >
            {t('invite_another')}
          </button>
          <button type="button" className="primary" onClick={onClose}>
            {t('done')}
          </button>
        </div>
      </div>
    );
  }

  function submit(e: FormEvent) {
    e.preventDefault();
    if (teamId === '') return;
    create.mutate();
  }

  const generalError = create.error && !(create.error instanceof ApiError && create.error.field) ? create.error : null;
  return (
    <form onSubmit={submit}>
      <ErrorAlert error={generalError} />
      {teams.length !== 1 && (
        <Field label={t('team')}>
          <select
            required
            value={teamId}
            onChange={(e) => {
              const id = e.target.value === '' ? '' : Number(e.target.value);
              setTeamId(id);
              const next = invitableRoles(teams.find((x) => x.id === id)?.role ?? null);
              if (!next.includes(role)) setRole('member');
            }}
          >
            <option value="" disabled>
              —
            </option>
            <TeamOptions teams={teams} />
          </select>
        </Field>
      )}
      <Field label={t('email')} error={fieldError('email')}>
        <input
          type="email"
          required
          autoComplete="off"
          value={email}
          aria-invalid={fieldError('email') ? true : undefined}
          onChange={(e) => setEmail(e.target.value)}
        />
      </Field>
      <Field label={t('role')} error={fieldError('role')}>
        <select value={role} onChange={(e) => setRole(e.target.value as Role)}>
          {(roles.length ? roles : (['member'] as Role[])).map((r) => (
            <option key={r} value={r}>
              {t(`common:role_${r}`)}
            </option>
          ))}
        </select>
      </Field>
      <Field label={t('valid_for')} error={fieldError('expires_in')}>
        <select value={validFor} onChange={(e) => setValidFor(e.target.value)}>
          <option value="1d">{t('days_1')}</option>
          <option value="7d">{t('days_7')}</option>
          <option value="14d">{t('days_14')}</option>
          <option value="30d">{t('days_30')}</option>
        </select>
      </Field>
      <div className="row" style={{ justifyContent: 'flex-end' }}>
        <FormButtons
          onCancel={onClose}
          label={t('create_invitation')}
          busy={create.isPending}
          busyLabel={t('creating')}
          disabled={teamId === ''}
        />
      </div>
    </form>
  );
}

// ---------------------------------------------------------------------------------------------
// Team name dialog (create and rename)

function TeamNameDialog({
  open,
  title,
  initial,
  submitLabel,
  onClose,
  onSubmit,
}: {
  open: boolean;
  title: string;
  initial: string;
  submitLabel: string;
  onClose: () => void;
  onSubmit: (name: string) => Promise<unknown>;
}) {
  const { t } = useTranslation(ns);
  return (
    <Dialog open={open} onClose={onClose} title={title}>
      {open && (
        <NameForm
          label={t('name')}
          help={t('name_help')}
          field="name"
          maxLength={64}
          initial={initial}
          submitLabel={submitLabel}
          onClose={onClose}
          onSubmit={onSubmit}
        />
      )}
    </Dialog>
  );
}

/** Rename and delete, shared by the list and the detail page. */
function useTeamMutations() {
  const queries = useQueryClient();
  const { refresh } = useAuth();
  const after = async () => {
    await queries.invalidateQueries({ queryKey: ['teams'] });
    await queries.invalidateQueries({ queryKey: ['team'] });
    await refresh();
  };
  return {
    create: async (name: string) => {
      const team = await unwrap(client.POST('/api/v1/teams', { body: { name } }));
      await after();
      return team;
    },
    rename: async (id: number, name: string) => {
      const team = await unwrap(client.PATCH('/api/v1/teams/{id}', { params: { path: { id } }, body: { name } }));
      await after();
      return team;
    },
    remove: async (id: number) => {
      await unwrap(client.DELETE('/api/v1/teams/{id}', { params: { path: { id } } }));
      queries.removeQueries({ queryKey: ['team', id] });
      await after();
    },
  };
}

function DeleteTeamDialog({
  team,
  onClose,
  onDeleted,
}: {
  team: Schemas['TeamView'] | null;
  onClose: () => void;
  onDeleted: () => void;
}) {
  const { t } = useTranslation(ns);
  const toast = useToast();
  const mutations = useTeamMutations();
  return (
    <ConfirmAction
      target={team}
      title={t('delete_title', { name: team?.name })}
      message={t('delete_message')}
      confirmLabel={t('delete_team')}
      run={(doomed) => mutations.remove(doomed.id)}
      onDone={(doomed) => {
        toast(t('deleted', { name: doomed.name }));
        onDeleted();
      }}
      onClose={onClose}
    />
  );
}

// ---------------------------------------------------------------------------------------------
// The list

function TeamList() {
  const { t } = useTranslation([ns, 'common']);
  const can = usePermissions();
  const { session } = useAuth();
  const toast = useToast();
  const navigate = useNavigate();
  const mutations = useTeamMutations();
  const [creating, setCreating] = useState(false);
  const [renaming, setRenaming] = useState<Schemas['TeamView'] | null>(null);
  const [deleting, setDeleting] = useState<Schemas['TeamView'] | null>(null);
  const teams = useTeams();
  const counts = useQueries({ queries: (teams.data ?? []).map((x) => teamMembersQuery(x.id)) });
  const ownRole = (id: number) => session?.memberships.find((m) => m.team_id === id)?.role ?? null;

  return (
    <>
      <div className="page-header">
        <h1>{t('title')}</h1>
        <span className="spacer" />
        {can.isAdmin && (
          <button type="button" className="primary" onClick={() => setCreating(true)}>
            {t('create_team')}
          </button>
        )}
      </div>
      <p className="muted" style={{ marginTop: 0 }}>
        {t('intro')}
      </p>
      <QueryState query={teams} empty={t('no_teams')}>
        {(list) => {
          const anyActions = list.some((x) => x.role === 'owner' || x.role === 'admin');
          return (
            <div className="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th>{t('col_team')}</th>
                    <th>{t('col_your_role')}</th>
                    <th className="num">{t('col_members')}</th>
                    <th className="hide-narrow">{t('col_created')}</th>
                    {anyActions && <th className="num">{t('col_actions')}</th>}
                  </tr>
                </thead>
                <tbody>
                  {list.map((team, i) => {
                    const role = isRole(team.role) ? team.role : null;
                    const mine = ownRole(team.id);
                    const count = counts[i]?.data?.length;
                  const countFailed = counts[i]?.isError ?? false;
                    return (
                      <tr key={team.id}>
                        <td>
                          <Link to={`/teams/${team.id}`}>
                            <strong>{team.name}</strong>
                          </Link>
                        </td>
                        <td>
                          <div className="row" style={{ gap: '0.3rem' }}>
                            {mine && <RoleBadge role={mine} />}
                            {can.isAdmin && <span className="badge">{t('instance_admin')}</span>}
                          </div>
                        </td>
                        <td className="num">{count !== undefined ? integer(count) : countFailed ? '—' : '…'}</td>
                        <td className="hide-narrow" title={dateTime(team.created_at)}>
                          {date(team.created_at)}
                        </td>
                        {anyActions && (
                          <td>
                            <div className="actions">
                              {(role === 'owner' || role === 'admin') && (
                                <button
                                  type="button"
                                  className="small"
                                  aria-label={`${t('rename')} ${team.name}`}
                                  onClick={() => setRenaming(team)}
                                >
                                  {t('rename')}
                                </button>
                              )}
                              {role === 'owner' && (
                                <button
                                  type="button"
                                  className="small danger"
                                  aria-label={`${t('common:delete')} ${team.name}`}
                                  onClick={() => setDeleting(team)}
                                >
                                  {t('common:delete')}
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
        }}
      </QueryState>
      <TeamNameDialog
        open={creating}
        title={t('create_title')}
        initial=""
        submitLabel={t('create_team')}
        onClose={() => setCreating(false)}
        onSubmit={async (name) => {
          const team = await mutations.create(name);
          toast(t('created', { name: team.name }));
          navigate(`/teams/${team.id}`);
        }}
      />
      <TeamNameDialog
        open={renaming !== null}
        title={t('rename_title')}
        initial={renaming?.name ?? ''}
        submitLabel={t('rename')}
        onClose={() => setRenaming(null)}
        onSubmit={async (name) => {
          if (!renaming) return;
          const team = await mutations.rename(renaming.id, name);
          toast(t('renamed', { name: team.name }));
        }}
      />
      <DeleteTeamDialog team={deleting} onClose={() => setDeleting(null)} onDeleted={() => setDeleting(null)} />
    </>
  );
}

// ---------------------------------------------------------------------------------------------
// One team

function TeamDetail({ id }: { id: number }) {
  const { t } = useTranslation([ns, 'common']);
  const can = usePermissions();
  const { session } = useAuth();
  const toast = useToast();
  const navigate = useNavigate();
  const mutations = useTeamMutations();
  const team = useQuery({
    queryKey: ['team', id],
    queryFn: () => unwrap(client.GET('/api/v1/teams/{id}', { params: { path: { id } } })),
  });
  const [renaming, setRenaming] = useState(false);
  const [deleting, setDeleting] = useState(false);

  if (team.isPending) return <Loading />;
  if (team.isError) {
    const missing = team.error instanceof ApiError && team.error.status === 404;
    return (
      <>
        <p>
          <Link to="/teams">{t('all_teams')}</Link>
        </p>
        {missing ? <Empty>{t('not_found')}</Empty> : <ErrorState error={team.error} onRetry={() => void team.refetch()} />}
      </>
    );
  }
  const data = team.data;
  const role = isRole(data.role) ? data.role : null;
  const ownRole = session?.memberships.find((m) => m.team_id === id)?.role ?? null;
  const manages = role === 'owner' || role === 'admin';

  return (
    <>
      <p style={{ margin: '0 0 0.5rem' }}>
        <Link to="/teams">{t('all_teams')}</Link>
      </p>
      <div className="page-header">
        <h1>{data.name}</h1>
        {ownRole && <RoleBadge role={ownRole} />}
        {can.isAdmin && <span className="badge">{t('instance_admin')}</span>}
        <span className="spacer" />
        {manages && (
          <button type="button" onClick={() => setRenaming(true)}>
            {t('rename')}
          </button>
        )}
        {role === 'owner' && (
          <button type="button" className="danger" onClick={() => setDeleting(true)}>
            {t('delete_team')}
          </button>
        )}
      </div>
      <div className="stack">
        <Members teamId={id} callerRole={role} />
        {manages && <Invitations teamId={id} teamName={data.name} callerRole={role} />}
      </div>
      <TeamNameDialog
        open={renaming}
        title={t('rename_title')}
        initial={data.name}
        submitLabel={t('rename')}
        onClose={() => setRenaming(false)}
        onSubmit={async (name) => {
          const renamed = await mutations.rename(id, name);
          toast(t('renamed', { name: renamed.name }));
        }}
      />
      <DeleteTeamDialog
        team={deleting ? data : null}
        onClose={() => setDeleting(false)}
        onDeleted={() => navigate('/teams', { replace: true })}
      />
    </>
  );
}

type Member = Schemas['MembershipView'];

function Members({ teamId, callerRole }: { teamId: number; callerRole: Role | null }) {
  const { t } = useTranslation([ns, 'common']);
  const can = usePermissions();
  const { refresh } = useAuth();
  const toast = useToast();
  const queries = useQueryClient();
  const members = useQuery(teamMembersQuery(teamId));
  const [removing, setRemoving] = useState<Member | null>(null);
  const [selfChange, setSelfChange] = useState<{ member: Member; role: Role } | null>(null);
  const [adding, setAdding] = useState(false);

  const sorted = useMemo(
    () =>
      [...(members.data ?? [])].sort(
        (a, b) =>
          (isRole(b.role) ? ROLE_RANK[b.role] : -1) - (isRole(a.role) ? ROLE_RANK[a.role] : -1) || a.email.localeCompare(b.email),
      ),
    [members.data],
  );
  const owners = sorted.filter((m) => m.role === 'owner').length;
  const manages = callerRole === 'owner' || callerRole === 'admin';

  const afterChange = async (userId: number) => {
    await queries.invalidateQueries({ queryKey: ['team-members', teamId] });
    void queries.invalidateQueries({ queryKey: ['teams'] });
    if (userId === can.userId) {
      await refresh();
      void queries.invalidateQueries({ queryKey: ['team', teamId] });
    }
  };
  const setRole = useMutation({
    mutationFn: ({ member, role }: { member: Member; role: Role }) =>
      unwrap(
        client.PUT('/api/v1/teams/{id}/members/{user_id}', {
          params: { path: { id: teamId, user_id: member.user_id } },
          body: { role },
        }),
      ),
    onSuccess: async (m) => {
      toast(t('role_changed', { email: m.email, role: t(`common:role_${m.role}`) }));
      setSelfChange(null);
      await afterChange(m.user_id);
    },
  });
  const remove = useMutation({
    mutationFn: (member: Member) =>
      unwrap(
        client.DELETE('/api/v1/teams/{id}/members/{user_id}', {
          params: { path: { id: teamId, user_id: member.user_id } },
        }),
      ),
    onSuccess: async (_, member) => {
      toast(t('removed', { email: member.email }));
      setRemoving(null);
      await afterChange(member.user_id);
    },
  });

  return (
    <section className="card" aria-labelledby="members-title">
      <div className="page-header" style={{ marginBottom: '0.5rem' }}>
        <h2 id="members-title" style={{ margin: 0 }}>
          {t('members')}
        </h2>
        <span className="spacer" />
        {can.isAdmin && (
          <button type="button" onClick={() => setAdding(true)}>
            {t('add_member')}
          </button>
        )}
      </div>
      {manages && (
        <p className="muted" style={{ marginTop: 0, fontSize: '0.85rem' }}>
          {t('members_help')}
        </p>
      )}
      {!selfChange && <ErrorAlert error={setRole.error} />}
      <QueryState query={members} empty={t('no_members')}>
        {() => (
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th>{t('col_member')}</th>
                  <th>{t('col_role')}</th>
                  <th className="hide-narrow">{t('col_joined')}</th>
                  {manages && <th className="num">{t('col_actions')}</th>}
                </tr>
              </thead>
              <tbody>
                {sorted.map((m) => {
                  const current = isRole(m.role) ? m.role : null;
                  const actions = current
                    ? memberActions(callerRole, current, owners)
                    : { roles: [], canChangeRole: false, canRemove: false, lastOwner: false };
                  const self = m.user_id === can.userId;
                  return (
                    <tr key={m.user_id}>
                      <td>
                        <div>
                          {m.display_name || m.email}
                          {self && <span className="muted"> ({t('you')})</span>}
                        </div>
                        {m.display_name && <div className="muted mono">{m.email}</div>}
                      </td>
                      <td>
                        {actions.canChangeRole ? (
                          <select
                            aria-label={t('role_of', { email: m.email })}
                            value={m.role}
                            disabled={setRole.isPending}
                            onChange={(e) => {
                              const role = e.target.value as Role;
                              if (self) setSelfChange({ member: m, role });
                              else setRole.mutate({ member: m, role });
                            }}
                          >
                            {actions.roles.map((r) => (
                              <option key={r} value={r}>
                                {t(`common:role_${r}`)}
                              </option>
                            ))}
                          </select>
                        ) : (
                          <div className="row" style={{ gap: '0.3rem' }}>
                            <RoleBadge role={m.role} />
                            {actions.lastOwner && manages && (
                              <span className="muted" style={{ fontSize: '0.8rem' }} title={t('last_owner_help')}>
                                {t('last_owner')}
                              </span>
                            )}
                          </div>
                        )}
                      </td>
                      <td className="hide-narrow" title={dateTime(m.joined_at)}>
                        {date(m.joined_at)}
                      </td>
                      {manages && (
                        <td>
                          <div className="actions">
                            {actions.canRemove && (
                              <button
                                type="button"
                                className="small danger"
                                aria-label={t('remove_label', { email: m.email })}
                                onClick={() => setRemoving(m)}
                              >
                                {t('remove')}
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
        )}
      </QueryState>
      {owners === 1 && manages && (
        <p className="muted" style={{ fontSize: '0.8rem', marginBottom: 0 }}>
          {t('last_owner_help')}
        </p>
      )}
      <ConfirmDialog
        open={removing !== null}
        title={t('remove_title', { email: removing?.email })}
        message={
          removing?.user_id === can.userId
            ? t('remove_self_message')
            : t('remove_message', { email: removing?.email })
        }
        confirmLabel={t('remove')}
        busy={remove.isPending}
        error={remove.error}
        onConfirm={() => removing && remove.mutate(removing)}
        onClose={() => {
          remove.reset();
          setRemoving(null);
        }}
      />
      <ConfirmDialog
        open={selfChange !== null}
        title={t('self_role_title')}
        message={t('self_role_message', { role: selfChange ? t(`common:role_${selfChange.role}`) : '' })}
        confirmLabel={t('change_role')}
        busy={setRole.isPending}
        error={setRole.error}
        onConfirm={() => selfChange && setRole.mutate(selfChange)}
        onClose={() => {
          setRole.reset();
          setSelfChange(null);
        }}
      />
      {can.isAdmin && (
        <AddMemberDialog
          open={adding}
          onClose={() => setAdding(false)}
          teamId={teamId}
          members={members.data ?? []}
          onAdded={(userId) => afterChange(userId)}
        />
      )}
    </section>
  );
}

/** Instance admins add an existing user directly (they are the ones who may list users). */
function AddMemberDialog({
  open,
  onClose,
  teamId,
  members,
  onAdded,
}: {
  open: boolean;
  onClose: () => void;
  teamId: number;
  members: Member[];
  onAdded: (userId: number) => Promise<void>;
}) {
  const { t } = useTranslation([ns, 'common']);
  return (
    <Dialog open={open} onClose={onClose} title={t('add_title')}>
      {open && <AddMemberForm teamId={teamId} members={members} onAdded={onAdded} onClose={onClose} />}
    </Dialog>
  );
}

function AddMemberForm({
  teamId,
  members,
  onAdded,
  onClose,
}: {
  teamId: number;
  members: Member[];
  onAdded: (userId: number) => Promise<void>;
  onClose: () => void;
}) {
  const { t } = useTranslation([ns, 'common']);
  const toast = useToast();
  const users = useUsers();
  const [userId, setUserId] = useState<number | ''>('');
  const [role, setRole] = useState<Role>('member');
  const add = useMutation({
    mutationFn: () =>
      unwrap(
        client.PUT('/api/v1/teams/{id}/members/{user_id}', {
          params: { path: { id: teamId, user_id: Number(userId) } },
          body: { role },
        }),
      ),
    onSuccess: async (m) => {
      toast(t('added', { email: m.email, role: t(`common:role_${m.role}`) }));
      await onAdded(m.user_id);
      onClose();
    },
  });
  const memberIds = new Set(members.map((m) => m.user_id));
  return (
    <QueryState query={users}>
      {(list) => {
        const candidates = list.filter((u) => !memberIds.has(u.id));
        if (candidates.length === 0) return <Empty>{t('no_users_left')}</Empty>;
        return (
          <form
            onSubmit={(e) => {
              e.preventDefault();
              if (userId !== '') add.mutate();
            }}
          >
            <p className="muted" style={{ marginTop: 0 }}>
              {t('add_help')}
            </p>
            <ErrorAlert error={add.error} />
            <Field label={t('user')}>
              <select required value={userId} onChange={(e) => setUserId(e.target.value ? Number(e.target.value) : '')}>
                <option value="" disabled>
                  —
                </option>
                {candidates.map((u) => (
                  <option key={u.id} value={u.id}>
                    {u.display_name && u.display_name !== u.email ? `${u.display_name} <${u.email}>` : u.email}
                  </option>
                ))}
              </select>
            </Field>
            <Field label={t('role')}>
              <select value={role} onChange={(e) => setRole(e.target.value as Role)}>
                {ROLES.map((r) => (
                  <option key={r} value={r}>
                    {t(`common:role_${r}`)}
                  </option>
                ))}
              </select>
            </Field>
            <div className="row" style={{ justifyContent: 'flex-end' }}>
              <FormButtons
                onCancel={onClose}
                label={t('add_member')}
                busy={add.isPending}
                disabled={userId === ''}
              />
            </div>
          </form>
        );
      }}
    </QueryState>
  );
}

function Invitations({ teamId, teamName, callerRole }: { teamId: number; teamName: string; callerRole: Role | null }) {
  const { t } = useTranslation([ns, 'common']);
  const toast = useToast();
  const queries = useQueryClient();
  const [inviting, setInviting] = useState(false);
  const [withdrawing, setWithdrawing] = useState<Schemas['InvitationView'] | null>(null);
  const invitations = useQuery({
    queryKey: ['team-invitations', teamId],
    queryFn: () => unwrap(client.GET('/api/v1/teams/{id}/invitations', { params: { path: { id: teamId } } })),
  });
  const withdraw = useMutation({
    mutationFn: (inv: Schemas['InvitationView']) =>
      unwrap(
        client.DELETE('/api/v1/teams/{id}/invitations/{invitation_id}', {
          params: { path: { id: teamId, invitation_id: inv.id } },
        }),
      ),
    onSuccess: () => {
      toast(t('withdrawn'));
      setWithdrawing(null);
      void queries.invalidateQueries({ queryKey: ['team-invitations', teamId] });
    },
  });
  const now = Date.now();
  return (
    <section className="card" aria-labelledby="invitations-title">
      <div className="page-header" style={{ marginBottom: '0.5rem' }}>
        <h2 id="invitations-title" style={{ margin: 0 }}>
          {t('invitations')}
        </h2>
        <span className="spacer" />
        <button type="button" className="primary" onClick={() => setInviting(true)}>
          {t('invite')}
        </button>
      </div>
      <p className="muted" style={{ marginTop: 0, fontSize: '0.85rem' }}>
        {t('invitations_help')}
      </p>
      <QueryState
        query={invitations}
        isEmpty={(list) => list.every((i) => i.accepted_at != null)}
        empty={t('no_invitations')}
      >
        {(list) => (
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th>{t('col_email')}</th>
                  <th>{t('col_role')}</th>
                  <th>{t('col_expires')}</th>
                  <th className="hide-narrow">{t('col_created')}</th>
                  <th className="num">{t('col_actions')}</th>
                </tr>
              </thead>
              <tbody>
                {list
                  .filter((i) => i.accepted_at == null)
                  .map((inv) => {
                    const expired = inv.expires_at <= now;
                    return (
                      <tr key={inv.id}>
                        <td className="mono">{inv.email}</td>
                        <td>
                          <RoleBadge role={inv.role} />
                        </td>
                        <td title={dateTime(inv.expires_at)}>
                          {expired ? (
                            <span className="badge warning">{t('expired')}</span>
                          ) : (
                            relative(inv.expires_at, now)
                          )}
                        </td>
                        <td className="hide-narrow" title={dateTime(inv.created_at)}>
                          {date(inv.created_at)}
                        </td>
                        <td>
                          <div className="actions">
                            <button
                              type="button"
                              className="small danger"
                              aria-label={t('withdraw_label', { email: inv.email })}
                              onClick={() => setWithdrawing(inv)}
                            >
                              {t('withdraw')}
                            </button>
                          </div>
                        </td>
                      </tr>
                    );
                  })}
              </tbody>
            </table>
          </div>
        )}
      </QueryState>
      <InviteDialog
        open={inviting}
        onClose={() => setInviting(false)}
        teams={[{ id: teamId, name: teamName, role: callerRole }]}
      />
      <ConfirmDialog
        open={withdrawing !== null}
        title={t('withdraw_title', { email: withdrawing?.email })}
        message={t('withdraw_message')}
        confirmLabel={t('withdraw')}
        busy={withdraw.isPending}
        error={withdraw.error}
        onConfirm={() => withdrawing && withdraw.mutate(withdrawing)}
        onClose={() => {
          withdraw.reset();
          setWithdrawing(null);
        }}
      />
    </section>
  );
}

export default function TeamsPage() {
  const { id } = useParams();
  const teamId = id === undefined ? null : Number(id);
  if (teamId === null) return <TeamList />;
  if (!Number.isInteger(teamId) || teamId <= 0) return <TeamDetailInvalid />;
  return <TeamDetail key={teamId} id={teamId} />;
}

function TeamDetailInvalid() {
  const { t } = useTranslation(ns);
  return (
    <>
      <p>
        <Link to="/teams">{t('all_teams')}</Link>
      </p>
      <Empty>{t('not_found')}</Empty>
    </>
  );
}
