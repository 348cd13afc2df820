// Settings (/settings, instance admins only): retention, master key and ingest as configured (with
// where to change them), ingest secret rotation (shown once), and token quotas with their use.
import { useState, type FormEvent } from 'react';
import { Link } from 'react-router';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { ApiError, client, unwrap, type Schemas } from '../api/client';
import { useQuotas, useSettings, useTeams } from '../api/queries';
import { defineMessages } from '../i18n';
import { compact, dateTime, integer, percent } from '../format';
import {
  ConfirmDialog,
  Dialog,
  ErrorAlert,
  Field,
  FormButtons,
  QueryState,
  SecretValue,
  useToast,
} from '../components/ui';

const ns = defineMessages(
  'settings',
  {
    title: 'Settings',
    intro: 'Instance-wide settings. Retention, the master key and ingest access come from tollgate.toml or TOLLGATE_* environment variables and apply after a restart; the ingest secret rotation and token quotas below apply at once.',
    retention: 'Data retention',
    retention_days_one: '{{n}} day',
    retention_days_other: '{{n}} days',
    retention_help: 'Raw call events older than this are deleted by a clean-up that runs every 24 hours by default. Hourly roll-ups, which feed the dashboards, are kept longer.',
    retention_where: 'To change it, set days under [retention] in tollgate.toml (or TOLLGATE_RETENTION__DAYS) and restart tollgate.',
    master_key: 'Master key',
    configured: 'Configured',
    not_configured: 'Not configured',
    master_on: 'New API keys keep an encrypted copy that team owners and admins may reveal (every reveal is audited), and routes may store upstream credentials encrypted.',
    master_off: 'API keys are shown only once, at creation, and routes cannot store upstream credentials.',
    master_where: 'Set master_key (at least 32 characters) in tollgate.toml or TOLLGATE_MASTER_KEY and restart. Keep it safe: copies sealed with it cannot be opened without it.',
    ingest: 'Usage ingest',
    ingest_help: 'Edge gateways and middleware report calls to POST /api/usage-log and /api/v1/usage/events, signed with the ingest secret (HMAC of the body) or sending it as a bearer token.',
    mode: 'Access',
    mode_open: 'Open: reports without credentials are accepted',
    mode_secret: 'Secret required',
    mode_open_where: 'Set ingest_allow_unauthenticated = false (TOLLGATE_INGEST_ALLOW_UNAUTHENTICATED) to require the secret.',
    source: 'Secret',
    source_console: 'Rotated in the console',
    source_config: 'From the configuration',
    source_none: 'None',
    source_console_help: 'Stored by tollgate (sealed with the master key when there is one); it replaces any configured secret.',
    source_config_help: 'From ingest_secret in tollgate.toml or TOLLGATE_INGEST_SECRET. Rotating here replaces it.',
    source_none_help: 'No secret is set: every report is refused unless ingest is open. Rotate to create one.',
    rotate: 'Rotate ingest secret',
    rotate_title: 'Rotate the ingest secret?',
    rotate_message: 'A new secret is generated and the current one stops working within a second. Every edge gateway and middleware that reports usage must be given the new secret right away, or its reports are refused.',
    rotate_confirm: 'Rotate',
    rotated_title: 'New ingest secret',
    rotated_label: 'New ingest secret',
    rotated_warning: 'Copy it now: it is not shown again. The previous secret no longer works.',
    rotated_toast: 'Ingest secret rotated',
    done: 'Done',
    quotas: 'Token quotas',
    quotas_help: 'LLM tokens used against a target, per UTC calendar month or for all time. The instance-wide figure also counts tokens reported by token counters. Quotas are shown on the dashboards; they do not block calls.',
    col_scope: 'Scope',
    col_quota: 'Quota',
    col_period: 'Period',
    col_used: 'Used',
    col_remaining: 'Remaining',
    col_usage: 'Usage',
    col_calls: 'Calls',
    col_actions: 'Actions',
    instance: 'Whole instance',
    no_quota: 'No quota',
    period_month: 'Calendar month (UTC)',
    period_total: 'All time',
    since: 'since {{date}}',
    usage_of: 'Usage of {{scope}}',
    edit: 'Edit',
    edit_label: 'Edit quota of {{scope}}',
    edit_title: 'Token quota: {{scope}}',
    limit: 'Limit tokens',
    tokens: 'Token limit',
    tokens_help: 'A whole number of tokens, at least 1.',
    tokens_preview: '= {{value}} tokens',
    period: 'Period',
    remove_quota: 'Remove quota',
    saved: 'Quota of {{scope}} saved',
    removed: 'Quota of {{scope}} removed',
    team_unknown: 'Team {{id}}',
  },
  {
    'zh-CN': {
      title: '设置',
      intro: '实例级设置。数据保留、主密钥和上报访问方式来自 tollgate.toml 或 TOLLGATE_* 环境变量，重启后生效；下方的上报密钥轮换和 Token 配额立即生效。',
      retention: '数据保留',
      retention_days_one: '{{n}} 天',
      retention_days_other: '{{n}} 天',
      retention_help: '早于此期限的原始调用记录会被清理任务删除（默认每 24 小时运行一次）。供仪表盘使用的小时汇总数据保留更久。',
      retention_where: '如需修改，请在 tollgate.toml 的 [retention] 中设置 days（或设置 TOLLGATE_RETENTION__DAYS），然后重启 tollgate。',
      master_key: '主密钥',
      configured: '已配置',
      not_configured: '未配置',
      master_on: '新建的 API 密钥会保留一份加密副本，团队所有者和管理员可以再次查看（每次查看都会记入审计）；路由可以加密保存上游凭据。',
      master_off: 'API 密钥仅在创建时显示一次，路由无法保存上游凭据。',
      master_where: '在 tollgate.toml 中设置 master_key（至少 32 个字符）或设置 TOLLGATE_MASTER_KEY，然后重启。请妥善保管：用它加密的副本离开它将无法解开。',
      ingest: '用量上报',
      ingest_help: '边缘网关和中间件向 POST /api/usage-log 和 /api/v1/usage/events 上报调用，使用上报密钥对请求体签名（HMAC）或将其作为 Bearer 令牌发送。',
      mode: '访问方式',
      mode_open: '开放：接受不带凭据的上报',
      mode_secret: '需要密钥',
      mode_open_where: '设置 ingest_allow_unauthenticated = false（TOLLGATE_INGEST_ALLOW_UNAUTHENTICATED）以要求密钥。',
      source: '密钥',
      source_console: '已在控制台轮换',
      source_config: '来自配置',
      source_none: '无',
      source_console_help: '由 tollgate 保存（有主密钥时会用其加密），并取代配置中的密钥。',
      source_config_help: '来自 tollgate.toml 中的 ingest_secret 或 TOLLGATE_INGEST_SECRET。在此轮换会取代它。',
      source_none_help: '未设置密钥：除非开放上报，否则所有上报都会被拒绝。轮换即可生成一个。',
      rotate: '轮换上报密钥',
      rotate_title: '轮换上报密钥？',
      rotate_message: '将生成新的密钥，当前密钥会在一秒内失效。所有上报用量的边缘网关和中间件都必须立即更新为新密钥，否则其上报会被拒绝。',
      rotate_confirm: '轮换',
      rotated_title: '新的上报密钥',
      rotated_label: '新的上报密钥',
      rotated_warning: '请立即复制：它不会再次显示。旧密钥已失效。',
      rotated_toast: '上报密钥已轮换',
      done: '完成',
      quotas: 'Token 配额',
      quotas_help: '按 UTC 自然月或累计统计的 LLM Token 用量与目标的对比。实例总量还包括 Token 计数器上报的用量。配额会显示在仪表盘上，但不会阻止调用。',
      col_scope: '范围',
      col_quota: '配额',
      col_period: '周期',
      col_used: '已用',
      col_remaining: '剩余',
      col_usage: '使用率',
      col_calls: '调用次数',
      col_actions: '操作',
      instance: '整个实例',
      no_quota: '无配额',
      period_month: '自然月（UTC）',
      period_total: '累计',
      since: '自 {{date}} 起',
      usage_of: '{{scope}} 的使用率',
      edit: '编辑',
      edit_label: '编辑 {{scope}} 的配额',
      edit_title: 'Token 配额：{{scope}}',
      limit: '限制 Token 数',
      tokens: 'Token 上限',
      tokens_help: '整数，至少为 1。',
      tokens_preview: '= {{value}} Token',
      period: '周期',
      remove_quota: '取消配额',
      saved: '已保存 {{scope}} 的配额',
      removed: '已取消 {{scope}} 的配额',
      team_unknown: '团队 {{id}}',
    },
    'zh-TW': {
      title: '設定',
      intro: '執行個體層級的設定。資料保留、主金鑰和上報存取方式來自 tollgate.toml 或 TOLLGATE_* 環境變數，重新啟動後生效；下方的上報密鑰輪替和 Token 配額立即生效。',
      retention: '資料保留',
      retention_days_one: '{{n}} 天',
      retention_days_other: '{{n}} 天',
      retention_help: '早於此期限的原始呼叫紀錄會被清理工作刪除（預設每 24 小時執行一次）。供儀表板使用的每小時彙總資料保留更久。',
      retention_where: '如需修改，請在 tollgate.toml 的 [retention] 中設定 days（或設定 TOLLGATE_RETENTION__DAYS），然後重新啟動 tollgate。',
      master_key: '主金鑰',
      configured: '已設定',
      not_configured: '未設定',
      master_on: '新建立的 API 金鑰會保留一份加密副本，團隊擁有者和管理員可以再次檢視（每次檢視都會記入稽核）；路由可以加密儲存上游憑證。',
      master_off: 'API 金鑰僅在建立時顯示一次，路由無法儲存上游憑證。',
      master_where: '在 tollgate.toml 中設定 master_key（至少 32 個字元）或設定 TOLLGATE_MASTER_KEY，然後重新啟動。請妥善保管：以它加密的副本沒有它將無法解開。',
      ingest: '用量上報',
      ingest_help: '邊緣閘道和中介軟體向 POST /api/usage-log 和 /api/v1/usage/events 上報呼叫，使用上報密鑰對請求本文簽章（HMAC）或將其作為 Bearer 權杖傳送。',
      mode: '存取方式',
      mode_open: '開放：接受不帶憑證的上報',
      mode_secret: '需要密鑰',
      mode_open_where: '設定 ingest_allow_unauthenticated = false（TOLLGATE_INGEST_ALLOW_UNAUTHENTICATED）以要求密鑰。',
      source: '密鑰',
      source_console: '已在主控台輪替',
      source_config: '來自設定檔',
      source_none: '無',
      source_console_help: '由 tollgate 儲存（有主金鑰時會以其加密），並取代設定檔中的密鑰。',
      source_config_help: '來自 tollgate.toml 中的 ingest_secret 或 TOLLGATE_INGEST_SECRET。在此輪替會取代它。',
      source_none_help: '未設定密鑰：除非開放上報，否則所有上報都會被拒絕。輪替即可產生一個。',
      rotate: '輪替上報密鑰',
      rotate_title: '輪替上報密鑰？',
      rotate_message: '將產生新的密鑰，目前的密鑰會在一秒內失效。所有上報用量的邊緣閘道和中介軟體都必須立即更新為新密鑰，否則其上報會被拒絕。',
      rotate_confirm: '輪替',
      rotated_title: '新的上報密鑰',
      rotated_label: '新的上報密鑰',
      rotated_warning: '請立即複製：它不會再次顯示。舊密鑰已失效。',
      rotated_toast: '上報密鑰已輪替',
      done: '完成',
      quotas: 'Token 配額',
      quotas_help: '依 UTC 日曆月或累計統計的 LLM Token 用量與目標的對照。執行個體總量也包含 Token 計數器上報的用量。配額會顯示在儀表板上，但不會阻擋呼叫。',
      col_scope: '範圍',
      col_quota: '配額',
      col_period: '週期',
      col_used: '已用',
      col_remaining: '剩餘',
      col_usage: '使用率',
      col_calls: '呼叫次數',
      col_actions: '操作',
      instance: '整個執行個體',
      no_quota: '無配額',
      period_month: '日曆月（UTC）',
      period_total: '累計',
      since: '自 {{date}} 起',
      usage_of: '{{scope}} 的使用率',
      edit: '編輯',
      edit_label: '編輯 {{scope}} 的配額',
      edit_title: 'Token 配額：{{scope}}',
      limit: '限制 Token 數',
      tokens: 'Token 上限',
      tokens_help: '整數，至少為 1。',
      tokens_preview: '= {{value}} Token',
      period: '週期',
      remove_quota: '取消配額',
      saved: '已儲存 {{scope}} 的配額',
      removed: '已取消 {{scope}} 的配額',
      team_unknown: '團隊 {{id}}',
    },
  },
);

type Quota = Schemas['QuotaView'];
type Period = Schemas['QuotaPeriod'];

/** Parses the quota box: digits with optional thousands separators → a whole number ≥ 1, else null. */
export function parseTokens(text: string): number | null {
  const cleaned = text.replace(/[\s,_]/g, '');
  if (!/^\d+$/.test(cleaned)) return null;
  const n = Number(cleaned);
  return Number.isSafeInteger(n) && n >= 1 ? n : null;
}

export default function SettingsPage() {
  const { t } = useTranslation([ns, 'common']);
  const settings = useSettings();
  return (
    <>
      <div className="page-header">
        <h1>{t('title')}</h1>
      </div>
      <p className="muted" style={{ marginTop: 0 }}>
        {t('intro')}
      </p>
      <div className="stack">
        <QueryState query={settings} isEmpty={() => false}>
          {(s) => (
            <div className="grid three">
              <RetentionCard days={s.retention_days} />
              <MasterKeyCard configured={s.master_key} />
              <IngestCard settings={s} />
            </div>
          )}
        </QueryState>
        <Quotas />
      </div>
    </>
  );
}

function RetentionCard({ days }: { days: number }) {
  const { t } = useTranslation(ns);
  return (
    <section className="card" aria-labelledby="retention-title">
      <h2 id="retention-title">{t('retention')}</h2>
      <div className="stat">
        <div className="value">{t('retention_days', { count: days, n: integer(days) })}</div>
      </div>
      <p>{t('retention_help')}</p>
      <p className="muted" style={{ fontSize: '0.85rem', marginBottom: 0 }}>
        {t('retention_where')}
      </p>
    </section>
  );
}

function MasterKeyCard({ configured }: { configured: boolean }) {
  const { t } = useTranslation(ns);
  return (
    <section className="card" aria-labelledby="master-title">
      <h2 id="master-title">{t('master_key')}</h2>
      <p>
        <span className={`badge ${configured ? 'success' : 'warning'}`}>
          {configured ? t('configured') : t('not_configured')}
        </span>
      </p>
      <p>{configured ? t('master_on') : t('master_off')}</p>
      {!configured && (
        <p className="muted" style={{ fontSize: '0.85rem', marginBottom: 0 }}>
          {t('master_where')}
        </p>
      )}
    </section>
  );
}

function IngestCard({ settings }: { settings: Schemas['SettingsView'] }) {
  const { t } = useTranslation([ns, 'common']);
  const toast = useToast();
  const queries = useQueryClient();
  const [confirming, setConfirming] = useState(false);
  const [secret, setSecret] = useState<string | null>(null);
  const rotate = useMutation({
    mutationFn: () => unwrap(client.POST('/api/v1/settings/ingest-secret')),
    onSuccess: (r) => {
      setConfirming(false);
      setSecret(r.secret);
      toast(t('rotated_toast'));
      void queries.invalidateQueries({ queryKey: ['settings'] });
    },
  });
  const source = settings.ingest_secret;
  return (
    <section className="card" aria-labelledby="ingest-title">
      <h2 id="ingest-title">{t('ingest')}</h2>
      <p className="muted" style={{ fontSize: '0.85rem', marginTop: 0 }}>
        {t('ingest_help')}
      </p>
      <dl className="details">
        <dt>{t('mode')}</dt>
        <dd>
          {settings.ingest_open ? (
            <span className="badge warning">{t('mode_open')}</span>
          ) : (
            <span className="badge success">{t('mode_secret')}</span>
          )}
        </dd>
        <dt>{t('source')}</dt>
        <dd>
          <span className={`badge ${source === 'none' ? (settings.ingest_open ? '' : 'danger') : 'info'}`}>
            {t(`source_${source}`)}
          </span>
        </dd>
      </dl>
      <p className="muted" style={{ fontSize: '0.85rem' }}>
        {t(`source_${source}_help`)}
        {settings.ingest_open && <> {t('mode_open_where')}</>}
      </p>
      <button type="button" className="danger" onClick={() => setConfirming(true)}>
        {t('rotate')}
      </button>
      <ConfirmDialog
        open={confirming}
        title={t('rotate_title')}
        message={t('rotate_message')}
        confirmLabel={t('rotate_confirm')}
        busy={rotate.isPending}
        error={rotate.error}
        onConfirm={() => rotate.mutate()}
        onClose={() => {
          rotate.reset();
          setConfirming(false);
        }}
      />
      <Dialog
        open={secret !== null}
        onClose={() => setSecret(null)}
        title={t('rotated_title')}
        footer={
          <button type="button" className="primary" onClick={() => setSecret(null)}>
            {t('done')}
          </button>
        }
      >
        <div className="alert warning" role="alert">
          {t('rotated_warning')}
        </div>
        {secret && <SecretValue value={secret} label={t('rotated_label')} />}
      </Dialog>
    </section>
  );
}

// ---------------------------------------------------------------------------------------------
// Quotas

function Quotas() {
  const { t } = useTranslation([ns, 'common']);
  const quotas = useQuotas();
  const teams = useTeams();
  const [editing, setEditing] = useState<{ quota: Quota; scope: string } | null>(null);
  const teamName = (id: number | null | undefined) =>
    teams.data?.find((x) => x.id === id)?.name ?? t('team_unknown', { id });

  return (
    <section className="card" aria-labelledby="quotas-title">
      <h2 id="quotas-title">{t('quotas')}</h2>
      <p className="muted" style={{ marginTop: 0, fontSize: '0.85rem' }}>
        {t('quotas_help')}
      </p>
      <QueryState query={quotas} isEmpty={(q) => !q.instance && q.teams.length === 0}>
        {(q) => {
          const rows = [
            ...(q.instance ? [{ quota: q.instance, scope: t('instance'), teamId: null as number | null }] : []),
            ...q.teams.map((quota) => ({ quota, scope: teamName(quota.team_id), teamId: quota.team_id ?? null })),
          ];
          return (
            <div className="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th>{t('col_scope')}</th>
                    <th className="num">{t('col_quota')}</th>
                    <th>{t('col_period')}</th>
                    <th className="num">{t('col_used')}</th>
                    <th className="num">{t('col_remaining')}</th>
                    <th>{t('col_usage')}</th>
                    <th className="num hide-narrow">{t('col_calls')}</th>
                    <th className="num">{t('col_actions')}</th>
                  </tr>
                </thead>
                <tbody>
                  {rows.map(({ quota, scope, teamId }) => (
                    <tr key={teamId ?? 'instance'}>
                      <td>
                        {teamId === null ? <strong>{scope}</strong> : <Link to={`/teams/${teamId}`}>{scope}</Link>}
                      </td>
                      <td className="num" title={quota.quota_tokens != null ? integer(quota.quota_tokens) : undefined}>
                        {quota.quota_tokens != null ? compact(quota.quota_tokens) : <span className="muted">{t('no_quota')}</span>}
                      </td>
                      <td style={{ whiteSpace: 'nowrap' }}>
                        {t(`period_${quota.period}`)}
                        {quota.period === 'month' && (
                          <div className="muted" style={{ fontSize: '0.8rem' }}>
                            {t('since', { date: dateTime(quota.period_start) })}
                          </div>
                        )}
                      </td>
                      <td className="num" title={integer(quota.used_tokens)}>
                        {compact(quota.used_tokens)}
                      </td>
                      <td className="num" title={quota.remaining_tokens != null ? integer(quota.remaining_tokens) : undefined}>
                        {quota.remaining_tokens != null ? compact(quota.remaining_tokens) : '—'}
                      </td>
                      <td style={{ minWidth: '9rem' }}>
                        {quota.usage_percent != null ? (
                          <div className="row" style={{ flexWrap: 'nowrap' }}>
                            <meter
                              min={0}
                              max={100}
                              low={75}
                              high={90}
                              optimum={0}
                              value={Math.min(100, quota.usage_percent)}
                              aria-label={t('usage_of', { scope })}
                              style={{ width: '5rem' }}
                            />
                            <span>{percent(quota.usage_percent / 100)}</span>
                          </div>
                        ) : (
                          <span className="muted">—</span>
                        )}
                      </td>
                      <td className="num hide-narrow">{compact(quota.calls)}</td>
                      <td>
                        <div className="actions">
                          <button
                            type="button"
                            className="small"
                            aria-label={t('edit_label', { scope })}
                            onClick={() => setEditing({ quota, scope })}
                          >
                            {t('edit')}
                          </button>
                        </div>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          );
        }}
      </QueryState>
      <Dialog
        open={editing !== null}
        onClose={() => setEditing(null)}
        title={t('edit_title', { scope: editing?.scope ?? '' })}
      >
        {editing && <QuotaForm quota={editing.quota} scope={editing.scope} onClose={() => setEditing(null)} />}
      </Dialog>
    </section>
  );
}

function QuotaForm({ quota, scope, onClose }: { quota: Quota; scope: string; onClose: () => void }) {
  const { t } = useTranslation([ns, 'common']);
  const toast = useToast();
  const queries = useQueryClient();
  const [limited, setLimited] = useState(quota.quota_tokens != null);
  const [text, setText] = useState(quota.quota_tokens != null ? String(quota.quota_tokens) : '');
  const [period, setPeriod] = useState<Period>(quota.period);
  const tokens = parseTokens(text);
  const save = useMutation({
    mutationFn: (body: Schemas['QuotaSetting']) =>
      quota.scope === 'instance' || quota.team_id == null
        ? unwrap(client.PUT('/api/v1/quotas/instance', { body }))
        : unwrap(client.PUT('/api/v1/quotas/teams/{id}', { params: { path: { id: quota.team_id } }, body })),
    onSuccess: (_, body) => {
      toast(body.tokens == null ? t('removed', { scope }) : t('saved', { scope }));
      // Dashboards and gauges elsewhere show the quota too.
      void queries.invalidateQueries();
      onClose();
    },
  });
  const serverTokensError =
    save.error instanceof ApiError && save.error.field === 'tokens' ? save.error.message : null;
  const localError = limited && text.trim() !== '' && tokens === null ? t('tokens_help') : null;

  function submit(e: FormEvent) {
    e.preventDefault();
    if (limited && tokens === null) return;
    save.mutate({ tokens: limited ? tokens : null, period });
  }

  return (
    <form onSubmit={submit}>
      {!serverTokensError && <ErrorAlert error={save.error} />}
      <label className="row" style={{ marginBottom: '0.8rem' }}>
        <input type="checkbox" checked={limited} onChange={(e) => setLimited(e.target.checked)} style={{ minHeight: 0 }} />
        {t('limit')}
      </label>
      {limited && (
        <Field
          label={t('tokens')}
          help={tokens !== null ? t('tokens_preview', { value: compact(tokens) }) : t('tokens_help')}
          error={serverTokensError ?? localError}
        >
          <input
            inputMode="numeric"
            required
            autoFocus
            value={text}
            placeholder="1000000"
            aria-invalid={serverTokensError || localError ? true : undefined}
            onChange={(e) => setText(e.target.value)}
          />
        </Field>
      )}
      <Field label={t('period')}>
        <select value={period} onChange={(e) => setPeriod(e.target.value as Period)}>
          <option value="month">{t('period_month')}</option>
          <option value="total">{t('period_total')}</option>
        </select>
      </Field>
      <div className="row" style={{ justifyContent: 'flex-end' }}>
        {quota.quota_tokens != null && (
          <button
            type="button"
            className="danger"
            style={{ marginRight: 'auto' }}
            disabled={save.isPending}
            onClick={() => save.mutate({ tokens: null, period })}
          >
            {t('remove_quota')}
          </button>
        )}
        <FormButtons
          onCancel={onClose}
          label={t('common:save')}
          busy={save.isPending}
          disabled={limited && tokens === null}
        />
      </div>
    </form>
  );
}
