import { useState, type FormEvent } from 'react';
import { Navigate, useSearchParams } from 'react-router';
import { useTranslation } from 'react-i18next';
import { useAuth } from '../auth';
import { defineMessages } from '../i18n';
import { ErrorAlert, Field, Loading } from '../components/ui';

const ns = defineMessages(
  'signin',
  {
    title: 'Sign in to tollgate',
    email: 'E-mail',
    password: 'Password',
    submit: 'Sign in',
    busy: 'Signing in…',
    first_admin: 'No account yet? The first admin is created with `tollgate admin create` or TOLLGATE_ADMIN_EMAIL / TOLLGATE_ADMIN_PASSWORD.',
  },
  {
    'zh-CN': {
      title: '登录 tollgate',
      email: '邮箱',
      password: '密码',
      submit: '登录',
      busy: '登录中…',
      first_admin: '还没有账户？第一个管理员通过 `tollgate admin create` 或 TOLLGATE_ADMIN_EMAIL / TOLLGATE_ADMIN_PASSWORD 创建。',
    },
    'zh-TW': {
      title: '登入 tollgate',
      email: '電子郵件',
      password: '密碼',
      submit: '登入',
      busy: '登入中…',
      first_admin: '還沒有帳戶？第一位管理員透過 `tollgate admin create` 或 TOLLGATE_ADMIN_EMAIL / TOLLGATE_ADMIN_PASSWORD 建立。',
    },
  },
);

/** Only same-origin paths are followed after sign-in. */
export function safeNext(next: string | null): string {
  return next && next.startsWith('/') && !next.startsWith('//') ? next : '/';
}

export default function SignIn() {
  const { t } = useTranslation(ns);
  const { session, signIn } = useAuth();
  const [params] = useSearchParams();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  if (session === undefined) return <Loading />;
  if (session) return <Navigate to={safeNext(params.get('next'))} replace />;

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(email, password);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="auth-page">
      <form className="card auth-card" onSubmit={submit} aria-labelledby="signin-title">
        <div className="brand">
          <img src="/favicon.svg" alt="" width={28} height={28} /> tollgate
        </div>
        <h1 id="signin-title" style={{ textAlign: 'center', marginBottom: '1rem' }}>
          {t('title')}
        </h1>
        <ErrorAlert error={error} />
        <Field label={t('email')}>
          <input
            type="email"
            name="email"
            autoComplete="username"
            required
            value={email}
            onChange={(e) => setEmail(e.target.value)}
          />
        </Field>
        <Field label={t('password')}>
          <input
            type="password"
            name="password"
            autoComplete="current-password"
            required
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </Field>
        <button type="submit" className="primary" style={{ width: '100%' }} disabled={busy}>
          {busy ? t('busy') : t('submit')}
        </button>
        <p className="muted" style={{ fontSize: '0.8rem' }}>
          {t('first_admin')}
        </p>
      </form>
    </div>
  );
}
