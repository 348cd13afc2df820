// The signed-in user's own page: profile, teams and roles, password change, preferences.
import { useEffect, useId, useState, type FormEvent } from 'react';
import { Link } from 'react-router';
import { useMutation } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { ApiError, client, unwrap } from '../api/client';
import { useAuth } from '../auth';
import { defineMessages } from '../i18n';
import { dateTime, relative } from '../format';
import { Dialog, ErrorAlert, Field, FormButtons, Loading, PageHeader, useToast } from '../components/ui';
import { LanguageSelect, ThemeSelect } from '../components/preferences';

const ns = defineMessages(
  'account',
  {
    title: 'Account',
    subtitle: 'Your profile, your teams, your password and how the console looks for you.',
    profile: 'Profile',
    email: 'E-mail',
    display_name: 'Display name',
    instance_role: 'Instance role',
    instance_admin: 'Instance admin',
    instance_user: 'User',
    admin_note: 'Instance admins manage users, settings and every team (as an owner).',
    created: 'Account created',
    last_login: 'Last sign-in',
    edit_name: 'Edit display name',
    edit_name_title: 'Change your display name',
    name_saved: 'Display name changed.',
    teams: 'Teams and roles',
    team: 'Team',
    role: 'Role',
    joined: 'Joined',
    no_teams: 'You are not a member of any team yet. A team owner or admin can invite you.',
    roles_help: 'Owners and admins manage keys, routes and members; members create keys; viewers read.',
    password: 'Change password',
    password_intro:
      'Changing your password signs you out everywhere: every other session of yours ends at once. Then you sign in again with the new password.',
    current_password: 'Current password',
    new_password: 'New password',
    confirm_password: 'Confirm new password',
    new_help: 'At least 10 characters, and not easy to guess (a few unrelated words work well).',
    mismatch: 'The two new passwords are not the same.',
    same_as_current: 'The new password is the same as the current one.',
    change: 'Change password',
    changing: 'Changing…',
    changed: 'Password changed. Sign in again with your new password.',
    preferences: 'Preferences',
    preferences_help: 'Kept in this browser. The same switches are in the top bar.',
    tokens_link: 'Personal access tokens for the CLI and scripts',
  },
  {
    'zh-CN': {
      title: '账户',
      subtitle: '你的个人资料、团队、密码以及控制台的显示方式。',
      profile: '个人资料',
      email: '邮箱',
      display_name: '显示名称',
      instance_role: '实例角色',
      instance_admin: '实例管理员',
      instance_user: '用户',
      admin_note: '实例管理员管理用户、设置以及所有团队（以所有者身份）。',
      created: '账户创建时间',
      last_login: '最后登录',
      edit_name: '编辑显示名称',
      edit_name_title: '修改显示名称',
      name_saved: '显示名称已修改。',
      teams: '团队与角色',
      team: '团队',
      role: '角色',
      joined: '加入时间',
      no_teams: '你还不是任何团队的成员。团队所有者或管理员可以邀请你。',
      roles_help: '所有者和管理员管理密钥、路由和成员；成员可创建密钥；只读成员只能查看。',
      password: '修改密码',
      password_intro: '修改密码会让你在所有地方退出登录：你的其他会话会立即失效。之后请用新密码重新登录。',
      current_password: '当前密码',
      new_password: '新密码',
      confirm_password: '确认新密码',
      new_help: '至少 10 个字符，且不易被猜到（几个不相关的单词组合效果很好）。',
      mismatch: '两次输入的新密码不一致。',
      same_as_current: '新密码与当前密码相同。',
      change: '修改密码',
      changing: '修改中…',
      changed: '密码已修改。请用新密码重新登录。',
      preferences: '偏好设置',
      preferences_help: '保存在此浏览器中。顶栏中也有相同的开关。',
      tokens_link: '用于 CLI 和脚本的个人访问令牌',
    },
    'zh-TW': {
      title: '帳戶',
      subtitle: '你的個人資料、團隊、密碼，以及主控台的顯示方式。',
      profile: '個人資料',
      email: '電子郵件',
      display_name: '顯示名稱',
      instance_role: '實例角色',
      instance_admin: '實例管理員',
      instance_user: '使用者',
      admin_note: '實例管理員管理使用者、設定以及所有團隊（以擁有者身分）。',
      created: '帳戶建立時間',
      last_login: '最後登入',
      edit_name: '編輯顯示名稱',
      edit_name_title: '變更顯示名稱',
      name_saved: '顯示名稱已變更。',
      teams: '團隊與角色',
      team: '團隊',
      role: '角色',
      joined: '加入時間',
      no_teams: '你還不是任何團隊的成員。團隊擁有者或管理員可以邀請你。',
      roles_help: '擁有者與管理員管理金鑰、路由與成員；成員可建立金鑰；唯讀成員只能檢視。',
      password: '變更密碼',
      password_intro: '變更密碼會讓你在所有地方登出：你的其他工作階段會立即失效。之後請用新密碼重新登入。',
      current_password: '目前密碼',
      new_password: '新密碼',
      confirm_password: '確認新密碼',
      new_help: '至少 10 個字元，且不易被猜到（幾個不相關的單字組合效果很好）。',
      mismatch: '兩次輸入的新密碼不一致。',
      same_as_current: '新密碼與目前密碼相同。',
      change: '變更密碼',
      changing: '變更中…',
      changed: '密碼已變更。請用新密碼重新登入。',
      preferences: '偏好設定',
      preferences_help: '儲存在此瀏覽器中。頂端列也有相同的開關。',
      tokens_link: '供 CLI 與指令碼使用的個人存取權杖',
    },
  },
);

/**
 * The client-side check of the password form, before the server judges strength. A confirmation
 * still being typed (a start of the new password) is not yet a mismatch.
 */
export function checkPasswordForm(current: string, next: string, confirm: string): 'mismatch' | 'same_as_current' | null {
  const typing = confirm.length < next.length && next.startsWith(confirm);
  if (confirm !== '' && next !== confirm && !typing) return 'mismatch';
  if (next !== '' && next === current) return 'same_as_current';
  return null;
}

const roleTone: Record<string, string> = { owner: 'success', admin: 'info', member: '', viewer: '' };

export default function AccountPage() {
  const { t } = useTranslation([ns, 'common']);
  const { session } = useAuth();
  const [editing, setEditing] = useState(false);
  if (!session) return <Loading />;
  const { user, memberships } = session;

  return (
    <div className="stack">
      <PageHeader title={t('title')} subtitle={t('subtitle')} lede />

      <div className="grid two">
        <section className="card" aria-labelledby="account-profile">
          <div className="row account-card-head">
            <h2 id="account-profile">{t('profile')}</h2>
            <span className="spacer" />
            {user.is_admin && (
              <button type="button" className="small" onClick={() => setEditing(true)}>
                {t('edit_name')}
              </button>
            )}
          </div>
          <dl className="details">
            <dt>{t('email')}</dt>
            <dd>{user.email}</dd>
            <dt>{t('display_name')}</dt>
            <dd>{user.display_name || <span className="muted">—</span>}</dd>
            <dt>{t('instance_role')}</dt>
            <dd>
              {user.is_admin ? (
                <span className="badge info">{t('instance_admin')}</span>
              ) : (
                <span className="badge">{t('instance_user')}</span>
              )}
            </dd>
            <dt>{t('created')}</dt>
            <dd>{dateTime(user.created_at)}</dd>
            <dt>{t('last_login')}</dt>
            <dd title={user.last_login_at ? dateTime(user.last_login_at) : undefined}>
              {user.last_login_at ? relative(user.last_login_at) : t('common:never')}
            </dd>
          </dl>
          {user.is_admin && <p className="muted account-note">{t('admin_note')}</p>}
          <p className="account-note">
            <Link to="/tokens">{t('tokens_link')}</Link>
          </p>
        </section>

        <section className="card" aria-labelledby="account-teams">
          <h2 id="account-teams">{t('teams')}</h2>
          {memberships.length === 0 ? (
            <p className="muted">{t('no_teams')}</p>
          ) : (
            <div className="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th scope="col">{t('team')}</th>
                    <th scope="col">{t('role')}</th>
                    <th scope="col">{t('joined')}</th>
                  </tr>
                </thead>
                <tbody>
                  {memberships.map((m) => (
                    <tr key={m.team_id}>
                      <td>
                        <Link to={`/teams/${m.team_id}`}>{m.team_name}</Link>
                      </td>
                      <td>
                        <span className={`badge ${roleTone[m.role] ?? ''}`}>{t(`common:role_${m.role}`, m.role)}</span>
                      </td>
                      <td title={dateTime(m.joined_at)}>{relative(m.joined_at)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <p className="muted account-note">{t('roles_help')}</p>
        </section>

        <PasswordForm />
        <Preferences />
      </div>

      {user.is_admin && (
        <DisplayNameDialog open={editing} userId={user.id} current={user.display_name} onClose={() => setEditing(false)} />
      )}
    </div>
  );
}

function PasswordForm() {
  const { t } = useTranslation([ns, 'common']);
  const { session, refresh } = useAuth();
  const toast = useToast();
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [confirm, setConfirm] = useState('');
  const localError = checkPasswordForm(current, next, confirm);

  const mutation = useMutation({
    mutationFn: () =>
      unwrap(client.POST('/api/v1/auth/password', { body: { current_password: current, new_password: next } })),
    onSuccess: async () => {
      setCurrent('');
      setNext('');
      setConfirm('');
      toast(t('changed'));
      // The server ended the sessions: finding out sends this browser to the sign-in page.
      await refresh();
    },
  });

  const apiError = mutation.error instanceof ApiError ? mutation.error : null;
  const currentError = apiError?.field === 'current_password' ? apiError.message : null;
  const newError = apiError?.field === 'password' || apiError?.field === 'new_password' ? apiError.message : null;
  const otherError = mutation.error && !currentError && !newError ? mutation.error : null;

  function submit(e: FormEvent) {
    e.preventDefault();
    if (localError || !current || !next || next !== confirm) return;
    mutation.mutate();
  }

  return (
    <section className="card" aria-labelledby="account-password">
      <h2 id="account-password">{t('password')}</h2>
      <p className="muted">{t('password_intro')}</p>
      <form onSubmit={submit} noValidate>
        <ErrorAlert error={otherError} />
        {/* Lets password managers tie the new password to this account. */}
        <input type="text" name="username" autoComplete="username" value={session?.user.email ?? ''} readOnly hidden />
        <Field label={t('current_password')} error={currentError}>
          <input
            type="password"
            name="current_password"
            autoComplete="current-password"
            required
            value={current}
            aria-invalid={Boolean(currentError)}
            onChange={(e) => setCurrent(e.target.value)}
          />
        </Field>
        <Field
          label={t('new_password')}
          help={t('new_help')}
          error={newError ?? (localError === 'same_as_current' ? t('same_as_current') : null)}
        >
          <input
            type="password"
            name="new_password"
            autoComplete="new-password"
            required
            minLength={10}
            maxLength={256}
            value={next}
            aria-invalid={Boolean(newError) || localError === 'same_as_current'}
            onChange={(e) => setNext(e.target.value)}
          />
        </Field>
        <Field label={t('confirm_password')} error={localError === 'mismatch' ? t('mismatch') : null}>
          <input
            type="password"
            name="confirm_password"
            autoComplete="new-password"
            required
            value={confirm}
            aria-invalid={localError === 'mismatch'}
            onChange={(e) => setConfirm(e.target.value)}
          />
        </Field>
        <button
          type="submit"
          className="primary"
          disabled={mutation.isPending || !current || !next || next !== confirm || localError !== null}
        >
          {mutation.isPending ? t('changing') : t('change')}
        </button>
      </form>
    </section>
  );
}

function Preferences() {
  const { t } = useTranslation([ns, 'common']);
  return (
    <section className="card" aria-labelledby="account-preferences">
      <h2 id="account-preferences">{t('preferences')}</h2>
      <p className="muted">{t('preferences_help')}</p>
      <Field label={t('common:theme')}>
        <ThemeSelect />
      </Field>
      <Field label={t('common:language')}>
        <LanguageSelect />
      </Field>
    </section>
  );
}

function DisplayNameDialog({
  open,
  userId,
  current,
  onClose,
}: {
  open: boolean;
  userId: number;
  current: string;
  onClose: () => void;
}) {
  const { t } = useTranslation([ns, 'common']);
  const { refresh } = useAuth();
  const toast = useToast();
  const [name, setName] = useState(current);
  const formId = useId();
  const mutation = useMutation({
    mutationFn: () =>
      unwrap(client.PATCH('/api/v1/users/{id}', { params: { path: { id: userId } }, body: { display_name: name.trim() } })),
    onSuccess: async () => {
      toast(t('name_saved'));
      await refresh();
      onClose();
    },
  });
  // Start from the current name each time the dialog opens.
  const [wasOpen, setWasOpen] = useState(false);
  if (open !== wasOpen) {
    setWasOpen(open);
    if (open) setName(current);
  }
  const resetMutation = mutation.reset;
  useEffect(() => {
    if (open) resetMutation();
  }, [open, resetMutation]);
  const apiError = mutation.error instanceof ApiError ? mutation.error : null;
  const nameError = apiError?.field === 'display_name' ? apiError.message : null;
  return (
    <Dialog
      open={open}
      onClose={onClose}
      title={t('edit_name_title')}
      footer={
        <FormButtons
          onCancel={onClose}
          label={t('common:save')}
          busy={mutation.isPending}
          disabled={name.trim() === ''}
          form={formId}
        />
      }
    >
      <form
        id={formId}
        onSubmit={(e) => {
          e.preventDefault();
          if (name.trim()) mutation.mutate();
        }}
        noValidate
      >
        <ErrorAlert error={nameError ? null : mutation.error} />
        <Field label={t('display_name')} error={nameError}>
          <input
            name="display_name"
            autoComplete="name"
            maxLength={100}
            value={name}
            aria-invalid={Boolean(nameError)}
            onChange={(e) => setName(e.target.value)}
          />
        </Field>
      </form>
    </Dialog>
  );
}
