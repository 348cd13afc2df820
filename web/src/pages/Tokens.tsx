// Personal access tokens (`tgp_…`): the signed-in user's credentials for the CLI and scripts
// against the console API. Each user manages only their own; the secret is shown once.
import { useEffect, useId, useState, type FormEvent } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { ApiError, client, unwrap, type Schemas } from '../api/client';
import { defineMessages } from '../i18n';
import { dateTime, relative } from '../format';
import {
  ConfirmAction,
  Dialog,
  ErrorAlert,
  Field,
  FormButtons,
  PageHeader,
  QueryState,
  SecretValue,
  useToast,
} from '../components/ui';

type TokenView = Schemas['TokenView'];
type TokenCreated = Schemas['TokenCreated'];

const ns = defineMessages(
  'tokens',
  {
    title: 'Personal access tokens',
    subtitle: 'Credentials for the CLI and your scripts to call the console API as you.',
    create: 'Create token',
    what_title: 'What they are for',
    what_body:
      'A token acts as you, with your roles, on the console API (/api/v1/…): scripts, CI jobs and the tollgate CLI use it instead of a password. Send it as a header; no cookie or CSRF token is needed.',
    what_gateway: 'Tokens do not work on the gateway: calls to models use API keys (ntk_…) from the API keys page.',
    what_keep: 'Treat a token like a password. Give it an expiry, and revoke it when a script no longer needs it.',
    empty: 'You have no access tokens yet.',
    name: 'Name',
    prefix: 'Prefix',
    created: 'Created',
    last_used: 'Last used',
    expires: 'Expires',
    status: 'Status',
    actions: 'Actions',
    never_expires: 'Never',
    active: 'Active',
    expired: 'Expired',
    revoked: 'Revoked',
    revoke: 'Revoke',
    revoke_named: 'Revoke token {{name}}',
    revoke_title: 'Revoke this token?',
    revoke_message: 'Scripts using “{{name}}” ({{prefix}}) will be refused from now on. This cannot be undone.',
    revoked_toast: 'Token “{{name}}” revoked.',
    dialog_title: 'Create access token',
    name_help: 'What it is for, e.g. “CI usage export”. 1 to 100 characters.',
    expiry: 'Expiry',
    expiry_7d: '7 days',
    expiry_30d: '30 days',
    expiry_90d: '90 days',
    expiry_365d: '1 year',
    expiry_never: 'No expiry',
    expiry_custom: 'Custom…',
    custom_expiry: 'Lifetime',
    custom_help: 'A duration such as 45d, 12h or 2w.',
    never_warning: 'A token without expiry works until it is revoked.',
    creating: 'Creating…',
    created_title: 'Token created',
    created_once: 'Copy the token now. It is shown only this once; tollgate keeps only a hash of it.',
    secret_label: 'New access token',
    copy_token: 'Copy token',
    usage_example: 'Use it like this:',
    done: 'Done',
    created_toast: 'Token “{{name}}” created.',
  },
  {
    'zh-CN': {
      title: '个人访问令牌',
      subtitle: '供 CLI 和脚本以你的身份调用控制台 API 的凭据。',
      create: '创建令牌',
      what_title: '用途',
      what_body:
        '令牌以你的身份和角色访问控制台 API（/api/v1/…）：脚本、CI 任务和 tollgate CLI 用它代替密码。以请求头发送即可，无需 Cookie 或 CSRF 令牌。',
      what_gateway: '令牌不能用于网关：调用模型请使用“API 密钥”页面中的 API 密钥（ntk_…）。',
      what_keep: '请像对待密码一样对待令牌。为它设置有效期，脚本不再需要时将其吊销。',
      empty: '你还没有访问令牌。',
      name: '名称',
      prefix: '前缀',
      created: '创建时间',
      last_used: '最后使用',
      expires: '过期时间',
      status: '状态',
      actions: '操作',
      never_expires: '永不过期',
      active: '有效',
      expired: '已过期',
      revoked: '已吊销',
      revoke: '吊销',
      revoke_named: '吊销令牌 {{name}}',
      revoke_title: '吊销此令牌？',
      revoke_message: '使用“{{name}}”（{{prefix}}）的脚本将从现在起被拒绝。此操作无法撤销。',
      revoked_toast: '令牌“{{name}}”已吊销。',
      dialog_title: '创建访问令牌',
      name_help: '用途说明，例如“CI 用量导出”。1 到 100 个字符。',
      expiry: '有效期',
      expiry_7d: '7 天',
      expiry_30d: '30 天',
      expiry_90d: '90 天',
      expiry_365d: '1 年',
      expiry_never: '永不过期',
      expiry_custom: '自定义…',
      custom_expiry: '有效时长',
      custom_help: '时长，例如 45d、12h 或 2w。',
      never_warning: '没有有效期的令牌在被吊销前一直有效。',
      creating: '创建中…',
      created_title: '令牌已创建',
      created_once: '请立即复制令牌。它只显示这一次；tollgate 只保存它的哈希值。',
      secret_label: '新的访问令牌',
      copy_token: '复制令牌',
      usage_example: '使用方式：',
      done: '完成',
      created_toast: '令牌“{{name}}”已创建。',
    },
    'zh-TW': {
      title: '個人存取權杖',
      subtitle: '供 CLI 與指令碼以你的身分呼叫主控台 API 的憑證。',
      create: '建立權杖',
      what_title: '用途',
      what_body:
        '權杖以你的身分與角色存取主控台 API（/api/v1/…）：指令碼、CI 工作與 tollgate CLI 以它取代密碼。以請求標頭傳送即可，不需要 Cookie 或 CSRF 權杖。',
      what_gateway: '權杖無法用於閘道：呼叫模型請使用「API 金鑰」頁面中的 API 金鑰（ntk_…）。',
      what_keep: '請像對待密碼一樣對待權杖。為它設定期限，指令碼不再需要時將其撤銷。',
      empty: '你還沒有存取權杖。',
      name: '名稱',
      prefix: '前綴',
      created: '建立時間',
      last_used: '最後使用',
      expires: '到期時間',
      status: '狀態',
      actions: '操作',
      never_expires: '永不到期',
      active: '有效',
      expired: '已到期',
      revoked: '已撤銷',
      revoke: '撤銷',
      revoke_named: '撤銷權杖 {{name}}',
      revoke_title: '要撤銷此權杖嗎？',
      revoke_message: '使用「{{name}}」（{{prefix}}）的指令碼從現在起將被拒絕。此操作無法復原。',
      revoked_toast: '權杖「{{name}}」已撤銷。',
      dialog_title: '建立存取權杖',
      name_help: '用途說明，例如「CI 用量匯出」。1 到 100 個字元。',
      expiry: '期限',
      expiry_7d: '7 天',
      expiry_30d: '30 天',
      expiry_90d: '90 天',
      expiry_365d: '1 年',
      expiry_never: '永不到期',
      expiry_custom: '自訂…',
      custom_expiry: '有效時長',
      custom_help: '時長，例如 45d、12h 或 2w。',
      never_warning: '沒有期限的權杖在撤銷前一直有效。',
      creating: '建立中…',
      created_title: '權杖已建立',
      created_once: '請立即複製權杖。它只會顯示這一次；tollgate 只保存它的雜湊值。',
      secret_label: '新的存取權杖',
      copy_token: '複製權杖',
      usage_example: '使用方式：',
      done: '完成',
      created_toast: '權杖「{{name}}」已建立。',
    },
  },
);

/** A token's state at `now`. */
export function tokenState(token: TokenView, now = Date.now()): 'active' | 'expired' | 'revoked' {
  if (token.revoked_at) return 'revoked';
  if (token.expires_at && token.expires_at <= now) return 'expired';
  return 'active';
}

const EXPIRY_CHOICES = ['7d', '30d', '90d', '365d', 'never', 'custom'] as const;
type ExpiryChoice = (typeof EXPIRY_CHOICES)[number];

function origin(): string {
  return typeof window === 'undefined' ? '' : window.location.origin;
}

export default function TokensPage() {
  const { t } = useTranslation(ns);
  const toast = useToast();
  const queries = useQueryClient();
  const [creating, setCreating] = useState(false);
  const [revoking, setRevoking] = useState<TokenView | null>(null);
  const tokens = useQuery({
    queryKey: ['tokens'],
    queryFn: () => unwrap(client.GET('/api/v1/tokens')),
  });

  return (
    <div className="stack">
      <PageHeader title={t('title')} subtitle={t('subtitle')} lede>
        <button type="button" className="primary" onClick={() => setCreating(true)}>
          {t('create')}
        </button>
      </PageHeader>

      <section className="card" aria-labelledby="tokens-what">
        <h2 id="tokens-what">{t('what_title')}</h2>
        <p>{t('what_body')}</p>
        <pre className="snippet">
          <code>{`curl -H "Authorization: Bearer tgp_…" ${origin()}/api/v1/auth/me`}</code>
        </pre>
        <p className="muted">{t('what_gateway')}</p>
        <p className="muted" style={{ marginBottom: 0 }}>
          {t('what_keep')}
        </p>
      </section>

      <QueryState query={tokens} empty={t('empty')}>
        {(list) => (
          <div className="table-wrap tokens-table">
            <table>
              <thead>
                <tr>
                  <th scope="col">{t('name')}</th>
                  <th scope="col">{t('prefix')}</th>
                  <th scope="col">{t('status')}</th>
                  <th scope="col">{t('created')}</th>
                  <th scope="col">{t('last_used')}</th>
                  <th scope="col">{t('expires')}</th>
                  <th scope="col" className="num">
                    <span className="sr-only">{t('actions')}</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {list.map((token) => (
                  <TokenRow key={token.id} token={token} onRevoke={() => setRevoking(token)} />
                ))}
              </tbody>
            </table>
          </div>
        )}
      </QueryState>

      <CreateTokenDialog open={creating} onClose={() => setCreating(false)} />
      <ConfirmAction
        target={revoking}
        title={t('revoke_title')}
        message={revoking ? t('revoke_message', { name: revoking.name, prefix: revoking.prefix }) : ''}
        confirmLabel={t('revoke')}
        run={(token) => unwrap(client.DELETE('/api/v1/tokens/{id}', { params: { path: { id: token.id } } }))}
        onDone={(token) => {
          toast(t('revoked_toast', { name: token.name }));
          void queries.invalidateQueries({ queryKey: ['tokens'] });
        }}
        onClose={() => setRevoking(null)}
      />
    </div>
  );
}

function TokenRow({ token, onRevoke }: { token: TokenView; onRevoke: () => void }) {
  const { t } = useTranslation([ns, 'common']);
  const state = tokenState(token);
  const tone = state === 'active' ? 'success' : state === 'expired' ? 'warning' : 'danger';
  return (
    <tr className={state === 'active' ? undefined : 'muted'}>
      <td>{token.name}</td>
      <td>
        <code>{token.prefix}</code>
      </td>
      <td>
        <span className={`badge ${tone}`}>{t(state)}</span>
      </td>
      <td title={dateTime(token.created_at)}>{relative(token.created_at)}</td>
      <td title={token.last_used_at ? dateTime(token.last_used_at) : undefined}>
        {token.last_used_at ? relative(token.last_used_at) : <span className="muted">{t('common:never')}</span>}
      </td>
      <td title={token.expires_at ? dateTime(token.expires_at) : undefined}>
        {token.expires_at ? relative(token.expires_at) : <span className="muted">{t('never_expires')}</span>}
      </td>
      <td className="num">
        {state !== 'revoked' && (
          <button type="button" className="small danger" onClick={onRevoke} aria-label={t('revoke_named', { name: token.name })}>
            {t('revoke')}
          </button>
        )}
      </td>
    </tr>
  );
}

function CreateTokenDialog({ open, onClose }: { open: boolean; onClose: () => void }) {
  const { t } = useTranslation([ns, 'common']);
  const toast = useToast();
  const queries = useQueryClient();
  const [name, setName] = useState('');
  const [expiry, setExpiry] = useState<ExpiryChoice>('90d');
  const [custom, setCustom] = useState('');
  const [created, setCreated] = useState<TokenCreated | null>(null);
  const formId = useId();

  const mutation = useMutation({
    mutationFn: () =>
      unwrap(
        client.POST('/api/v1/tokens', {
          body: {
            name: name.trim(),
            expires_in: expiry === 'never' ? null : expiry === 'custom' ? custom.trim() : expiry,
          },
        }),
      ),
    onSuccess: async (result) => {
      setCreated(result);
      toast(t('created_toast', { name: result.name }));
      await queries.invalidateQueries({ queryKey: ['tokens'] });
    },
  });

  const resetMutation = mutation.reset;
  useEffect(() => {
    if (open) {
      setName('');
      setExpiry('90d');
      setCustom('');
      setCreated(null);
      resetMutation();
    }
  }, [open, resetMutation]);

  const apiError = mutation.error instanceof ApiError ? mutation.error : null;
  const nameError = apiError?.field === 'name' ? apiError.message : null;
  const expiryError = apiError?.field === 'expires_in' ? apiError.message.replace(/^expires_in: /, '') : null;
  const otherError = mutation.error && !nameError && !expiryError ? mutation.error : null;

  function submit(e: FormEvent) {
    e.preventDefault();
    if (name.trim() === '' || (expiry === 'custom' && custom.trim() === '')) return;
    mutation.mutate();
  }

  if (created) {
    const example = `curl -H "Authorization: Bearer ${created.token}" ${origin()}/api/v1/auth/me`;
    return (
      <Dialog
        open={open}
        onClose={onClose}
        title={t('created_title')}
        footer={
          <button type="button" className="primary" onClick={onClose}>
            {t('done')}
          </button>
        }
      >
        <div className="alert warning" role="alert">
          {t('created_once')}
        </div>
        <SecretValue value={created.token} label={t('secret_label')} copyLabel={t('copy_token')} />
        <p className="muted">{t('usage_example')}</p>
        <pre className="snippet">
          <code>{example}</code>
        </pre>
      </Dialog>
    );
  }

  return (
    <Dialog
      open={open}
      onClose={onClose}
      title={t('dialog_title')}
      footer={
        <FormButtons
          onCancel={onClose}
          label={t('common:create')}
          busy={mutation.isPending}
          busyLabel={t('creating')}
          disabled={name.trim() === '' || (expiry === 'custom' && custom.trim() === '')}
          form={formId}
        />
      }
    >
      <form id={formId} onSubmit={submit} noValidate>
        <ErrorAlert error={otherError} />
        <Field label={t('name')} help={t('name_help')} error={nameError}>
          <input
            name="name"
            required
            maxLength={100}
            autoComplete="off"
            value={name}
            aria-invalid={Boolean(nameError)}
            onChange={(e) => setName(e.target.value)}
          />
        </Field>
        <Field
          label={t('expiry')}
          help={expiry === 'never' ? t('never_warning') : undefined}
          error={expiry !== 'custom' ? expiryError : null}
        >
          <select
            name="expiry"
            value={expiry}
            aria-invalid={Boolean(expiryError) && expiry !== 'custom'}
            onChange={(e) => setExpiry(e.target.value as ExpiryChoice)}
          >
            {EXPIRY_CHOICES.map((c) => (
              <option key={c} value={c}>
                {t(`expiry_${c}`)}
              </option>
            ))}
          </select>
        </Field>
        {expiry === 'custom' && (
          <Field label={t('custom_expiry')} help={t('custom_help')} error={expiryError}>
            <input
              name="expires_in"
              required
              placeholder="45d"
              autoComplete="off"
              spellCheck={false}
              value={custom}
              aria-invalid={Boolean(expiryError)}
              onChange={(e) => setCustom(e.target.value)}
            />
          </Field>
        )}
      </form>
    </Dialog>
  );
}
