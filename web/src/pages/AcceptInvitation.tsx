// Accepting an invitation (/invite/:token, public): shows the team, address, role and expiry,
// asks for a password (and a display name for a new account), joins the team and signs in.
import { useEffect, useState, type FormEvent } from 'react';
import { Link, useNavigate, useParams } from 'react-router';
import { useTranslation } from 'react-i18next';
import { isRole } from '../api/vocabulary';
import { ApiError, client, unwrap, type Schemas } from '../api/client';
import { useAuth } from '../auth';
import { defineMessages } from '../i18n';
import { LanguageSelect } from '../components/preferences';
import { dateTime, relative } from '../format';
import { ErrorAlert, Field, Loading } from '../components/ui';

const ns = defineMessages(
  'invite',
  {
    title: 'Join {{team}} on tollgate',
    title_generic: 'Accept invitation',
    summary: '{{email}} is invited to the team {{team}} as {{role}}.',
    expires: 'The invitation expires {{when}} ({{date}}).',
    new_account: 'Choose a password to create your account.',
    existing_account: 'This address already has an account: enter its password to join the team.',
    email: 'E-mail',
    display_name: 'Display name',
    display_name_help: 'Shown to your team. Optional.',
    password: 'Password',
    password_help: 'At least 10 characters and not easy to guess.',
    confirm_password: 'Confirm password',
    mismatch: 'The passwords do not match.',
    submit: 'Accept invitation',
    busy: 'Joining…',
    gone_title: 'This invitation can no longer be used',
    gone_help: 'Ask the person who invited you for a new link.',
    invalid_title: 'This invitation link is not valid',
    invalid_help: 'Check that you copied the whole link, or ask for a new one.',
    sign_in: 'Go to sign-in',
    signed_in_as: 'You are signed in as {{email}}; accepting signs you in as {{invited}} instead.',
  },
  {
    'zh-CN': {
      title: '加入 tollgate 上的 {{team}}',
      title_generic: '接受邀请',
      summary: '{{email}} 受邀以{{role}}身份加入团队 {{team}}。',
      expires: '邀请将于{{when}}过期（{{date}}）。',
      new_account: '设置密码以创建你的账户。',
      existing_account: '该邮箱已有账户：请输入其密码以加入团队。',
      email: '邮箱',
      display_name: '显示名称',
      display_name_help: '团队成员可见。可选。',
      password: '密码',
      password_help: '至少 10 个字符，且不易被猜到。',
      confirm_password: '确认密码',
      mismatch: '两次输入的密码不一致。',
      submit: '接受邀请',
      busy: '加入中…',
      gone_title: '此邀请已无法使用',
      gone_help: '请向邀请你的人索取新的链接。',
      invalid_title: '此邀请链接无效',
      invalid_help: '请检查是否复制了完整的链接，或索取新的链接。',
      sign_in: '前往登录',
      signed_in_as: '你当前以 {{email}} 登录；接受邀请后将改为以 {{invited}} 登录。',
    },
    'zh-TW': {
      title: '加入 tollgate 上的 {{team}}',
      title_generic: '接受邀請',
      summary: '{{email}} 受邀以{{role}}身分加入團隊 {{team}}。',
      expires: '邀請將於{{when}}到期（{{date}}）。',
      new_account: '設定密碼以建立你的帳戶。',
      existing_account: '此電子郵件已有帳戶：請輸入其密碼以加入團隊。',
      email: '電子郵件',
      display_name: '顯示名稱',
      display_name_help: '團隊成員可見。選填。',
      password: '密碼',
      password_help: '至少 10 個字元，且不易被猜到。',
      confirm_password: '確認密碼',
      mismatch: '兩次輸入的密碼不一致。',
      submit: '接受邀請',
      busy: '加入中…',
      gone_title: '此邀請已無法使用',
      gone_help: '請向邀請你的人索取新的連結。',
      invalid_title: '此邀請連結無效',
      invalid_help: '請確認是否複製了完整的連結，或索取新的連結。',
      sign_in: '前往登入',
      signed_in_as: '你目前以 {{email}} 登入；接受邀請後將改為以 {{invited}} 登入。',
    },
  },
);

function LanguageSwitch() {
  const { t } = useTranslation('common');
  return (
    <div className="row" style={{ justifyContent: 'flex-end', marginBottom: '0.5rem' }}>
      <LanguageSelect aria-label={t('language')} />
    </div>
  );
}

function Brand() {
  return (
    <div className="brand">
      <img src="/favicon.svg" alt="" width={28} height={28} /> tollgate
    </div>
  );
}

type Preview =
  | { isPending: true; isError: false; data?: undefined; error?: undefined }
  | { isPending: false; isError: true; data?: undefined; error: ApiError }
  | { isPending: false; isError: false; data: Schemas['InvitationPreview']; error?: undefined };

/**
 * Loads the invitation. Kept out of the query cache on purpose: on this public page the session
 * check answers 401, and the app then clears every cached query, which would lose this one.
 */
function useInvitation(token: string): Preview & { refetch: () => void } {
  const [state, setState] = useState<Preview>({ isPending: true, isError: false });
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    let live = true;
    setState({ isPending: true, isError: false });
    unwrap(client.GET('/api/v1/invitations/{token}', { params: { path: { token } } })).then(
      (data) => live && setState({ isPending: false, isError: false, data }),
      (error: unknown) =>
        live &&
        setState({
          isPending: false,
          isError: true,
          error: error instanceof ApiError ? error : new ApiError(0, 'error', String(error)),
        }),
    );
    return () => {
      live = false;
    };
  }, [token, attempt]);
  return { ...state, refetch: () => setAttempt((n) => n + 1) };
}

export default function AcceptInvitation() {
  const { token = '' } = useParams();
  const { t } = useTranslation([ns, 'common']);
  const preview = useInvitation(token);

  if (preview.isPending) {
    return (
      <div className="auth-page">
        <div className="card auth-card">
          <LanguageSwitch />
          <Brand />
          <Loading />
        </div>
      </div>
    );
  }
  if (preview.isError) {
    const status = preview.error instanceof ApiError ? preview.error.status : 0;
    const gone = status === 410;
    const invalid = status === 404;
    return (
      <div className="auth-page">
        <div className="card auth-card" role="alert" aria-labelledby="invite-title">
          <LanguageSwitch />
          <Brand />
          <h1 id="invite-title" style={{ textAlign: 'center', marginBottom: '1rem' }}>
            {gone ? t('gone_title') : invalid ? t('invalid_title') : t('title_generic')}
          </h1>
          <div className="alert error">{preview.error.message}</div>
          <p className="muted">{gone ? t('gone_help') : invalid ? t('invalid_help') : null}</p>
          {!gone && !invalid && (
            <button type="button" onClick={() => preview.refetch()}>
              {t('common:retry')}
            </button>
          )}
          <p style={{ textAlign: 'center' }}>
            <Link to="/sign-in">{t('sign_in')}</Link>
          </p>
        </div>
      </div>
    );
  }
  return <AcceptForm token={token} invitation={preview.data} />;
}

function AcceptForm({
  token,
  invitation,
}: {
  token: string;
  invitation: Schemas['InvitationPreview'];
}) {
  const { t, i18n } = useTranslation([ns, 'common']);
  const { session, refresh } = useAuth();
  const navigate = useNavigate();
  const [displayName, setDisplayName] = useState('');
  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const existing = invitation.existing_account;
  const mismatch = !existing && confirm !== '' && confirm !== password;
  const fieldError = (field: string) => (error instanceof ApiError && error.field === field ? error.message : null);
  const roleName = isRole(invitation.role)
    ? t(`common:role_${invitation.role}`)
    : invitation.role;
  // Mid-sentence in English: "as member", not "as Member".
  const role = i18n.language === 'en' ? roleName.toLowerCase() : roleName;

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (mismatch) return;
    setBusy(true);
    setError(null);
    try {
      await unwrap(
        client.POST('/api/v1/invitations/{token}/accept', {
          params: { path: { token } },
          body: { password, display_name: existing ? null : displayName.trim() || null },
        }),
      );
      // The answer sets the session cookie: load the session and go in.
      await refresh();
      navigate('/', { replace: true });
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  }

  const passwordError = fieldError('password');
  const nameError = fieldError('display_name');
  return (
    <div className="auth-page">
      <form className="card auth-card" onSubmit={submit} aria-labelledby="invite-title">
        <LanguageSwitch />
        <Brand />
        <h1 id="invite-title" style={{ textAlign: 'center', marginBottom: '0.75rem' }}>
          {t('title', { team: invitation.team })}
        </h1>
        <p style={{ marginTop: 0 }}>
          {t('summary', { email: invitation.email, team: invitation.team, role })}{' '}
          <span className="muted">
            {t('expires', { when: relative(invitation.expires_at), date: dateTime(invitation.expires_at) })}
          </span>
        </p>
        {session && session.user.email !== invitation.email && (
          <div className="alert warning">
            {t('signed_in_as', { email: session.user.email, invited: invitation.email })}
          </div>
        )}
        <p className="muted" style={{ fontSize: '0.9rem' }}>
          {existing ? t('existing_account') : t('new_account')}
        </p>
        {!passwordError && !nameError && <ErrorAlert error={error} />}
        <Field label={t('email')}>
          <input
            type="email"
            name="email"
            autoComplete="username"
            readOnly
            value={invitation.email}
            style={{ background: 'var(--surface-2)' }}
          />
        </Field>
        {!existing && (
          <Field label={t('display_name')} help={t('display_name_help')} error={nameError}>
            <input
              name="name"
              autoComplete="name"
              maxLength={100}
              value={displayName}
              aria-invalid={nameError ? true : undefined}
              onChange={(e) => setDisplayName(e.target.value)}
            />
          </Field>
        )}
        <Field label={t('password')} help={existing ? undefined : t('password_help')} error={passwordError}>
          <input
            type="password"
            name="password"
            autoComplete={existing ? 'current-password' : 'new-password'}
            required
            minLength={existing ? undefined : 10}
            value={password}
            aria-invalid={passwordError ? true : undefined}
            onChange={(e) => setPassword(e.target.value)}
          />
        </Field>
        {!existing && (
          <Field label={t('confirm_password')} error={mismatch ? t('mismatch') : null}>
            <input
              type="password"
              name="confirm"
              autoComplete="new-password"
              required
              value={confirm}
              aria-invalid={mismatch ? true : undefined}
              onChange={(e) => setConfirm(e.target.value)}
            />
          </Field>
        )}
        <button type="submit" className="primary" style={{ width: '100%' }} disabled={busy || mismatch}>
          {busy ? t('busy') : t('submit')}
        </button>
      </form>
    </div>
  );
}
