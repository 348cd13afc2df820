// Token counters (SPEC "Token-count sync"): a tool's cumulative token figure recorded against a
// quota. The record dialog accepts every format the server parses (350K, 35万, "350,000 tokens
// used", full-width digits…) and shows, while typing, what the server understood and what the
// reading will do to the counter (an increment, or a reset when it is below what was used).
import { useEffect, useId, useMemo, useState, type FormEvent, type ReactNode } from 'react';
import { Link, useSearchParams } from 'react-router';
import { useInfiniteQuery, useMutation, useQuery, useQueryClient, type UseQueryResult } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { ApiError, client, unwrap, type Schemas } from '../api/client';
import { useAuth, usePermissions, type Permissions } from '../auth';
import { defineMessages } from '../i18n';
import { compact, dateTime, integer, percent, relative } from '../format';
import {
  CopyButton,
  Dialog,
  Empty,
  ErrorAlert,
  ErrorState,
  Field,
  FormButtons,
  Loading,
  PageHeader,
  errorMessage,
  useToast,
} from '../components/ui';
import { Gauge } from '../components/charts';

type CounterStatus = Schemas['CounterStatus'];
type ReadingView = Schemas['ReadingView'];

const ns = defineMessages(
  'counters',
  {
    title: 'Token counters',
    subtitle: 'Cumulative token figures reported by AI tools, tracked against a quota.',
    record: 'Record reading',
    new_counter: 'New counter',
    all_counters: 'Counters',
    counter: 'Counter',
    no_counters: 'No counters yet. Record a first reading to create one.',
    instance_wide: 'Instance-wide',
    team_n: 'Team #{{id}}',
    not_created: 'The counter “{{name}}” has no readings yet.',
    not_created_hint: 'Record a first reading to create it with a quota of {{quota}} tokens.',
    not_created_readonly: 'It is created by the first reading someone records.',
    gauge_label: 'Quota used by counter {{name}}',
    used: 'Used',
    quota: 'Quota',
    percent: 'Percent',
    remaining: 'Remaining',
    sessions: 'Sessions',
    last_update: 'Last update',
    of_quota: '{{used}} of {{quota}}',
    over_quota: 'Over quota',
    set_quota: 'Set quota',
    set_quota_title: 'Set the quota of “{{name}}”',
    quota_help: 'A number of tokens in any form: 2000000, 2M, 200万.',
    quota_preview: '{{used}} used would be {{percent}} of it.',
    quota_saved: 'Quota of “{{name}}” set to {{quota}}.',
    history: 'History',
    history_hint: 'Every reading, newest first.',
    no_history: 'No readings yet.',
    load_more: 'Load more',
    loading_more: 'Loading…',
    end_of_history: 'That is the whole history.',
    reset: 'reset',
    reset_to: 'Reset to {{value}}',
    reading_of: 'Reading {{value}}',
    no_event: 'No description',
    conversation: 'Conversation',
    by: 'by {{actor}}',
    sync_manual: 'manual',
    sync_clipboard: 'clipboard',
    sync_estimate: 'estimate',
    sync_import: 'import',
    sync_api: 'api',
    dialog_title: 'Record a reading',
    dialog_new_title: 'New counter',
    dialog_intro: 'Type the cumulative figure the tool shows, as it shows it. tollgate works out the increment.',
    dialog_new_intro: 'A counter is created by its first reading, with a quota of {{quota}} tokens.',
    counter_name: 'Counter name',
    counter_name_help: '1 to 64 letters, digits, -, _ or . (for example cursor, claude-code).',
    counter_name_invalid: 'Use 1 to 64 letters, digits, -, _ or . (and not “parse”).',
    counter_exists: 'This counter exists: the reading is recorded on it.',
    reading: 'Reading',
    reading_placeholder: 'e.g. 350K, 1.2M, 35万, 350,000 tokens used',
    accepted_forms: 'Accepted: {{examples}}, full-width digits.',
    parsing: 'Checking…',
    parsed: 'Understood as {{value}} tokens',
    preview_first: 'First reading: the counter starts at {{value}}.',
    preview_increment: '+{{increment}} on top of the {{used}} used → {{after}}.',
    preview_unchanged: 'Same as the {{used}} already used: adds nothing.',
    preview_reset: 'Lower than the {{used}} already used: this counts as a reset, and used becomes {{after}}.',
    preview_quota: 'That is {{percent}} of the quota.',
    paste: 'Paste',
    pasted: 'Pasted from the clipboard (recorded as “clipboard”).',
    paste_failed: 'The clipboard could not be read; paste with Ctrl+V instead.',
    event: 'Event',
    event_placeholder: 'e.g. finished the design',
    event_help: 'What happened since the last reading (optional, up to 500 characters).',
    conversation_id: 'Conversation id (optional)',
    submit: 'Record',
    submitting: 'Recording…',
    recorded: 'Recorded +{{increment}} on “{{name}}”.',
    recorded_reset: '“{{name}}” was reset to {{value}}.',
    cli_title: 'From the command line',
    cli_intro: 'On the server host, the CLI records to the same counters:',
    cli_api: 'From a script, with a personal access token:',
    cli_tokens_link: 'Create a personal access token',
    readonly: 'You can read this team counter; recording needs the member role.',
  },
  {
    'zh-CN': {
      title: 'Token 计数器',
      subtitle: 'AI 工具报告的累计 Token 数，对照配额跟踪。',
      record: '记录读数',
      new_counter: '新建计数器',
      all_counters: '计数器',
      counter: '计数器',
      no_counters: '还没有计数器。记录第一个读数即可创建。',
      instance_wide: '全实例',
      team_n: '团队 #{{id}}',
      not_created: '计数器“{{name}}”还没有读数。',
      not_created_hint: '记录第一个读数即可创建它，配额为 {{quota}} 个 Token。',
      not_created_readonly: '有人记录第一个读数时它会被创建。',
      gauge_label: '计数器 {{name}} 的配额用量',
      used: '已用',
      quota: '配额',
      percent: '百分比',
      remaining: '剩余',
      sessions: '会话数',
      last_update: '最后更新',
      of_quota: '{{used}} / {{quota}}',
      over_quota: '超出配额',
      set_quota: '设置配额',
      set_quota_title: '设置“{{name}}”的配额',
      quota_help: '任意形式的 Token 数：2000000、2M、200万。',
      quota_preview: '已用的 {{used}} 将占 {{percent}}。',
      quota_saved: '“{{name}}”的配额已设为 {{quota}}。',
      history: '历史',
      history_hint: '全部读数，最新的在前。',
      no_history: '还没有读数。',
      load_more: '加载更多',
      loading_more: '加载中…',
      end_of_history: '以上就是全部历史。',
      reset: '重置',
      reset_to: '重置为 {{value}}',
      reading_of: '读数 {{value}}',
      no_event: '无描述',
      conversation: '会话',
      by: '由 {{actor}} 记录',
      sync_manual: '手动',
      sync_clipboard: '剪贴板',
      sync_estimate: '估算',
      sync_import: '导入',
      sync_api: 'API',
      dialog_title: '记录读数',
      dialog_new_title: '新建计数器',
      dialog_intro: '按工具显示的样子输入累计数字，tollgate 会算出增量。',
      dialog_new_intro: '计数器由第一个读数创建，配额为 {{quota}} 个 Token。',
      counter_name: '计数器名称',
      counter_name_help: '1 到 64 个字母、数字、-、_ 或 .（例如 cursor、claude-code）。',
      counter_name_invalid: '请使用 1 到 64 个字母、数字、-、_ 或 .（且不能是“parse”）。',
      counter_exists: '该计数器已存在：读数会记录到它上面。',
      reading: '读数',
      reading_placeholder: '例如 350K、1.2M、35万、350,000 tokens used',
      accepted_forms: '可接受：{{examples}}，以及全角数字。',
      parsing: '检查中…',
      parsed: '识别为 {{value}} 个 Token',
      preview_first: '第一个读数：计数器从 {{value}} 开始。',
      preview_increment: '在已用的 {{used}} 上 +{{increment}} → {{after}}。',
      preview_unchanged: '与已用的 {{used}} 相同：不增加。',
      preview_reset: '低于已用的 {{used}}：这会被视为重置，已用变为 {{after}}。',
      preview_quota: '即配额的 {{percent}}。',
      paste: '粘贴',
      pasted: '已从剪贴板粘贴（记录为“剪贴板”）。',
      paste_failed: '无法读取剪贴板，请用 Ctrl+V 粘贴。',
      event: '事件',
      event_placeholder: '例如 完成了设计',
      event_help: '自上次读数以来发生了什么（可选，最多 500 个字符）。',
      conversation_id: '会话 ID（可选）',
      submit: '记录',
      submitting: '记录中…',
      recorded: '已在“{{name}}”上记录 +{{increment}}。',
      recorded_reset: '“{{name}}”已重置为 {{value}}。',
      cli_title: '通过命令行',
      cli_intro: '在服务器主机上，CLI 会记录到同样的计数器：',
      cli_api: '在脚本中使用个人访问令牌：',
      cli_tokens_link: '创建个人访问令牌',
      readonly: '你可以查看这个团队计数器；记录需要成员角色。',
    },
    'zh-TW': {
      title: 'Token 計數器',
      subtitle: 'AI 工具回報的累計 Token 數，對照配額追蹤。',
      record: '記錄讀數',
      new_counter: '新增計數器',
      all_counters: '計數器',
      counter: '計數器',
      no_counters: '尚無計數器。記錄第一筆讀數即可建立。',
      instance_wide: '全實例',
      team_n: '團隊 #{{id}}',
      not_created: '計數器「{{name}}」尚無讀數。',
      not_created_hint: '記錄第一筆讀數即可建立，配額為 {{quota}} 個 Token。',
      not_created_readonly: '有人記錄第一筆讀數時就會建立。',
      gauge_label: '計數器 {{name}} 的配額用量',
      used: '已用',
      quota: '配額',
      percent: '百分比',
      remaining: '剩餘',
      sessions: '工作階段數',
      last_update: '最後更新',
      of_quota: '{{used}} / {{quota}}',
      over_quota: '超出配額',
      set_quota: '設定配額',
      set_quota_title: '設定「{{name}}」的配額',
      quota_help: '任何形式的 Token 數：2000000、2M、200萬。',
      quota_preview: '已用的 {{used}} 將佔 {{percent}}。',
      quota_saved: '「{{name}}」的配額已設為 {{quota}}。',
      history: '歷史紀錄',
      history_hint: '所有讀數，最新的在前。',
      no_history: '尚無讀數。',
      load_more: '載入更多',
      loading_more: '載入中…',
      end_of_history: '以上就是全部歷史紀錄。',
      reset: '重設',
      reset_to: '重設為 {{value}}',
      reading_of: '讀數 {{value}}',
      no_event: '無描述',
      conversation: '對話',
      by: '由 {{actor}} 記錄',
      sync_manual: '手動',
      sync_clipboard: '剪貼簿',
      sync_estimate: '估算',
      sync_import: '匯入',
      sync_api: 'API',
      dialog_title: '記錄讀數',
      dialog_new_title: '新增計數器',
      dialog_intro: '依工具顯示的樣子輸入累計數字，tollgate 會算出增量。',
      dialog_new_intro: '計數器由第一筆讀數建立，配額為 {{quota}} 個 Token。',
      counter_name: '計數器名稱',
      counter_name_help: '1 到 64 個字母、數字、-、_ 或 .（例如 cursor、claude-code）。',
      counter_name_invalid: '請使用 1 到 64 個字母、數字、-、_ 或 .（且不能是「parse」）。',
      counter_exists: '此計數器已存在：讀數會記錄在它上面。',
      reading: '讀數',
      reading_placeholder: '例如 350K、1.2M、35萬、350,000 tokens used',
      accepted_forms: '可接受：{{examples}}，以及全形數字。',
      parsing: '檢查中…',
      parsed: '解讀為 {{value}} 個 Token',
      preview_first: '第一筆讀數：計數器從 {{value}} 開始。',
      preview_increment: '在已用的 {{used}} 上 +{{increment}} → {{after}}。',
      preview_unchanged: '與已用的 {{used}} 相同：不會增加。',
      preview_reset: '低於已用的 {{used}}：這會視為重設，已用變為 {{after}}。',
      preview_quota: '即配額的 {{percent}}。',
      paste: '貼上',
      pasted: '已從剪貼簿貼上（記錄為「剪貼簿」）。',
      paste_failed: '無法讀取剪貼簿，請改用 Ctrl+V 貼上。',
      event: '事件',
      event_placeholder: '例如 完成了設計',
      event_help: '自上次讀數以來發生了什麼（選填，最多 500 個字元）。',
      conversation_id: '對話 ID（選填）',
      submit: '記錄',
      submitting: '記錄中…',
      recorded: '已在「{{name}}」上記錄 +{{increment}}。',
      recorded_reset: '「{{name}}」已重設為 {{value}}。',
      cli_title: '透過命令列',
      cli_intro: '在伺服器主機上，CLI 會記錄到同樣的計數器：',
      cli_api: '在指令碼中使用個人存取權杖：',
      cli_tokens_link: '建立個人存取權杖',
      readonly: '你可以檢視這個團隊計數器；記錄需要成員角色。',
    },
  },
);

/** The counter shown when none is chosen (the server's `DEFAULT_COUNTER`). */
export const DEFAULT_COUNTER = 'default';
/** The quota a counter gets from its first reading (the server's `DEFAULT_QUOTA`). */
export const DEFAULT_QUOTA = 1_000_000;
/** Readings per history page. */
export const HISTORY_PAGE = 50;
/** Wait this long after the last keystroke before asking the server to parse. */
export const PARSE_DEBOUNCE_MS = 300;
/** Forms shown as a hint before anything is typed (the server sends its own list once it answers). */
const EXAMPLES = ['350000', '350,000', '350 000', '350_000', '350K', '1.2M', '35万', '3.5亿', '350,000 tokens used'];
const SYNC_TYPES = ['manual', 'clipboard', 'estimate', 'import', 'api'] as const;

/**
 * Whether `name` is a valid counter name, as the server checks it (`views::is_plain_name` and
 * `check_counter_name`): 1 to 64 bytes of letters, digits, `-`, `_` or `.`, and not `parse`.
 */
export function isCounterName(name: string): boolean {
  if (name === '' || name === 'parse') return false;
  if (new TextEncoder().encode(name).length > 64) return false;
  return /^[\p{Alphabetic}\p{N}_.-]+$/u.test(name);
}

/** What a reading will do to a counter. */
export interface ReadingPreview {
  /** `first`: no counter yet; `reset`: below what was used; `unchanged`: equal to it. */
  kind: 'first' | 'increment' | 'unchanged' | 'reset';
  /** Tokens the reading adds (for a reset, the reading itself, as the server stores it). */
  increment: number;
  /** Tokens used afterwards. */
  usedAfter: number;
}

/**
 * The increment a reading will produce, as the server computes it: `reading − used`, or, when the
 * reading is below what was used, a reset (used becomes the reading). `used` is null when the
 * counter does not exist yet.
 */
export function previewReading(used: number | null | undefined, reading: number): ReadingPreview {
  if (used === null || used === undefined) return { kind: 'first', increment: reading, usedAfter: reading };
  if (reading < used) return { kind: 'reset', increment: reading, usedAfter: reading };
  if (reading === used) return { kind: 'unchanged', increment: 0, usedAfter: used };
  return { kind: 'increment', increment: reading - used, usedAfter: reading };
}

/** The server's parse of what was typed, debounced; `text` is what the answer is about. */
export type ParseState =
  | { status: 'idle' }
  | { status: 'parsing' }
  | { status: 'ok'; text: string; tokens: number; examples: string[] }
  | { status: 'error'; text: string; message: string };

/** The API names the field (`text: …`); the person typing knows which field it is. */
function parseMessage(error: unknown): string {
  return errorMessage(error).replace(/^(text|tokens|quota): /, '');
}

/**
 * Asks `POST /api/v1/counters/parse` what `text` means, `delay` ms after it stops changing.
 * While a new answer is awaited the previous one stays (no flicker); only the answer for the
 * latest text is kept.
 */
export function useParsedFigure(text: string, delay = PARSE_DEBOUNCE_MS): ParseState {
  const [state, setState] = useState<ParseState>({ status: 'idle' });
  useEffect(() => {
    if (text.trim() === '') {
      setState({ status: 'idle' });
      return;
    }
    setState((prev) => (prev.status === 'idle' ? { status: 'parsing' } : prev));
    const controller = new AbortController();
    const timer = setTimeout(() => {
      unwrap(client.POST('/api/v1/counters/parse', { body: { text }, signal: controller.signal })).then(
        (parsed) => {
          if (!controller.signal.aborted)
            setState({ status: 'ok', text, tokens: parsed.tokens, examples: parsed.examples });
        },
        (error: unknown) => {
          if (!controller.signal.aborted) setState({ status: 'error', text, message: parseMessage(error) });
        },
      );
    }, delay);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [text, delay]);
  return state;
}

/**
 * The "Reading" input with live feedback: what the server understood, and what recording it will
 * do to a counter that has `used` tokens (null: the counter does not exist yet).
 */
export function ReadingField({
  value,
  onChange,
  used,
  quota,
  error,
  delay,
  extra,
}: {
  value: string;
  onChange: (value: string) => void;
  used: number | null;
  quota: number;
  error?: string | null;
  delay?: number;
  extra?: ReactNode;
}) {
  const { t } = useTranslation(ns);
  const id = useId();
  const parsed = useParsedFigure(value, delay);
  const invalid = (parsed.status === 'error' && parsed.text === value) || Boolean(error);
  return (
    <div className="field">
      <label htmlFor={id} className="form-label">
        {t('reading')}
      </label>
      <div className="counters-input-row">
        <input
          id={id}
          name="reading"
          autoComplete="off"
          inputMode="text"
          spellCheck={false}
          required
          maxLength={200}
          placeholder={t('reading_placeholder')}
          value={value}
          aria-invalid={invalid}
          aria-describedby={`${id}-feedback`}
          onChange={(e) => onChange(e.target.value)}
        />
        {extra}
      </div>
      <div
        id={`${id}-feedback`}
        className={`counters-feedback ${'text' in parsed && parsed.text !== value ? 'stale' : ''}`}
        aria-live="polite"
        data-testid="reading-feedback"
      >
        <ParseFeedback parsed={parsed} used={used} quota={quota} />
      </div>
      {error && (
        <small className="error" role="alert">
          {error}
        </small>
      )}
    </div>
  );
}

function ParseFeedback({ parsed, used, quota }: { parsed: ParseState; used: number | null; quota: number }) {
  const { t } = useTranslation(ns);
  switch (parsed.status) {
    case 'idle':
      return <small className="help">{t('accepted_forms', { examples: EXAMPLES.join(', ') })}</small>;
    case 'parsing':
      return <small className="help">{t('parsing')}</small>;
    case 'error':
      return <div className="alert error counters-parse-error">{parsed.message}</div>;
    case 'ok': {
      const preview = previewReading(used, parsed.tokens);
      const values = {
        value: integer(parsed.tokens),
        used: integer(used),
        increment: integer(preview.increment),
        after: integer(preview.usedAfter),
      };
      const line =
        preview.kind === 'first'
          ? t('preview_first', values)
          : preview.kind === 'reset'
            ? t('preview_reset', values)
            : preview.kind === 'unchanged'
              ? t('preview_unchanged', values)
              : t('preview_increment', values);
      return (
        <div className={`alert ${preview.kind === 'reset' ? 'warning' : 'success'} counters-parse-ok`}>
          <strong>
            {t('parsed', { value: values.value })}
            {parsed.tokens >= 1000 && <span className="muted"> ({compact(parsed.tokens)})</span>}
          </strong>
          <div>
            {preview.kind === 'reset' && <span aria-hidden="true">⚠ </span>}
            {line} {quota > 0 && t('preview_quota', { percent: percent(preview.usedAfter / quota) })}
          </div>
        </div>
      );
    }
  }
}

/** Who may record on, and set the quota of, a counter (as the server checks it). */
export function counterRights(can: Permissions, counter: CounterStatus | null) {
  const team = counter?.team_id ?? null;
  return {
    // Instance-wide counters (and new ones, which are instance-wide) are open to everyone signed in.
    record: team === null || can.canCreateKeys(team),
    setQuota: counter !== null && (team === null ? can.isAdmin : can.canManage(team)),
  };
}

function canReadClipboard(): boolean {
  return typeof navigator !== 'undefined' && typeof navigator.clipboard?.readText === 'function';
}

function statusQueryKey(name: string) {
  return ['counters', 'status', name] as const;
}

export default function CountersPage() {
  const { t } = useTranslation([ns, 'common']);
  const can = usePermissions();
  const [params, setParams] = useSearchParams();
  const selected = params.get('counter') || DEFAULT_COUNTER;
  const [dialog, setDialog] = useState<null | 'record' | 'new' | 'quota'>(null);

  const list = useQuery({
    queryKey: ['counters', 'list'],
    queryFn: () => unwrap(client.GET('/api/v1/counters')),
  });
  // A counter exists once it has a first reading: when the list says it does not, there is no
  // status to ask for (the server would answer 404).
  const listed = list.data?.some((c) => c.name === selected) ?? false;
  const status = useQuery({
    queryKey: statusQueryKey(selected),
    queryFn: () => unwrap(client.GET('/api/v1/counters/{name}', { params: { path: { name: selected } } })),
    enabled: list.isSuccess ? listed : list.isError,
    retry: (count, error) => !(error instanceof ApiError && error.status === 404) && count < 2,
  });
  const missing =
    (list.isSuccess && !listed && !status.data) || (status.error instanceof ApiError && status.error.status === 404);
  const counter = status.data ?? null;
  const rights = counterRights(can, counter);

  const select = (name: string) => {
    const next = new URLSearchParams(params);
    if (name === DEFAULT_COUNTER) next.delete('counter');
    else next.set('counter', name);
    setParams(next);
  };

  return (
    <div className="stack">
      <PageHeader title={t('title')} subtitle={t('subtitle')} lede>
        <button type="button" onClick={() => setDialog('new')}>
          {t('new_counter')}
        </button>
        {rights.record && (
          <button type="button" className="primary" onClick={() => setDialog('record')}>
            {t('record')}
          </button>
        )}
      </PageHeader>

      <div className="counters-layout">
        <CounterList list={list} selected={selected} onSelect={select} />

        <div className="stack counters-main">
          <section className="card" aria-labelledby="counter-status-title">
            <div className="row counters-status-head">
              <h2 id="counter-status-title" className="mono">
                {selected}
              </h2>
              {counter && <TeamBadge teamId={counter.team_id ?? null} />}
              <span className="spacer" />
              {rights.setQuota && (
                <button type="button" className="small" onClick={() => setDialog('quota')}>
                  {t('set_quota')}
                </button>
              )}
            </div>
            {missing ? (
              <div className="state empty">
                <p>{t('not_created', { name: selected })}</p>
                <p>{rights.record ? t('not_created_hint', { quota: integer(DEFAULT_QUOTA) }) : t('not_created_readonly')}</p>
                {rights.record && (
                  <button type="button" className="primary" onClick={() => setDialog('record')}>
                    {t('record')}
                  </button>
                )}
              </div>
            ) : status.isError ? (
              <ErrorState error={status.error} onRetry={() => void status.refetch()} />
            ) : status.isPending ? (
              <Loading />
            ) : (
              counter && <CounterStatusView counter={counter} readonly={!rights.record} />
            )}
          </section>

          {counter && <History name={selected} />}

          <CliHints name={selected} />
        </div>
      </div>

      <RecordDialog
        open={dialog === 'record' || dialog === 'new'}
        mode={dialog === 'new' ? 'new' : 'record'}
        counterName={selected}
        counters={list.data ?? []}
        current={counter}
        onClose={() => setDialog(null)}
        onRecorded={(name) => {
          setDialog(null);
          if (name !== selected) select(name);
        }}
      />
      {counter && <QuotaDialog open={dialog === 'quota'} counter={counter} onClose={() => setDialog(null)} />}
    </div>
  );
}

function TeamBadge({ teamId }: { teamId: number | null }) {
  const { t } = useTranslation(ns);
  const { session } = useAuth();
  if (teamId === null) return <span className="badge">{t('instance_wide')}</span>;
  const name = session?.memberships.find((m) => m.team_id === teamId)?.team_name;
  return <span className="badge info">{name ?? t('team_n', { id: teamId })}</span>;
}

function CounterList({
  list,
  selected,
  onSelect,
}: {
  list: UseQueryResult<CounterStatus[]>;
  selected: string;
  onSelect: (name: string) => void;
}) {
  const { t } = useTranslation(ns);
  return (
    <nav className="card counters-list" aria-labelledby="counters-list-title">
      <h2 id="counters-list-title">{t('all_counters')}</h2>
      {list.isPending ? (
        <Loading />
      ) : list.isError ? (
        <ErrorState error={list.error} onRetry={() => void list.refetch()} />
      ) : list.data.length === 0 ? (
        <Empty>{t('no_counters')}</Empty>
      ) : (
        <ul>
          {list.data.map((c) => {
            const ratio = c.quota > 0 ? c.used / c.quota : 0;
            const tone = ratio >= 0.9 ? 'danger' : ratio >= 0.75 ? 'warning' : '';
            return (
              <li key={c.name}>
                <Link
                  to={c.name === DEFAULT_COUNTER ? '?' : `?counter=${encodeURIComponent(c.name)}`}
                  aria-current={c.name === selected ? 'page' : undefined}
                  onClick={(e) => {
                    e.preventDefault();
                    onSelect(c.name);
                  }}
                >
                  <span className="counters-list-name">
                    <span className="mono">{c.name}</span>
                    <span className="muted">{percent(c.percent / 100)}</span>
                  </span>
                  <span className={`counters-bar ${tone}`} aria-hidden="true">
                    <span style={{ width: `${Math.min(100, Math.max(0, ratio * 100))}%` }} />
                  </span>
                  <span className="muted counters-list-figures">
                    {t('of_quota', { used: compact(c.used), quota: compact(c.quota) })}
                  </span>
                </Link>
              </li>
            );
          })}
        </ul>
      )}
    </nav>
  );
}

function CounterStatusView({ counter, readonly }: { counter: CounterStatus; readonly: boolean }) {
  const { t } = useTranslation(ns);
  const ratio = counter.quota > 0 ? counter.used / counter.quota : 0;
  return (
    <>
      {readonly && <div className="alert info">{t('readonly')}</div>}
      <div className="counters-status">
        <Gauge
          ratio={ratio}
          label={t('gauge_label', { name: counter.name })}
          caption={
            <>
              <strong>{percent(counter.percent / 100)}</strong>
              <span className="muted">{t('of_quota', { used: compact(counter.used), quota: compact(counter.quota) })}</span>
            </>
          }
        />
        <dl className="details counters-figures">
          <dt>{t('used')}</dt>
          <dd>
            <span className="counters-big">{integer(counter.used)}</span>{' '}
            {counter.used > counter.quota && <span className="badge danger">{t('over_quota')}</span>}
          </dd>
          <dt>{t('quota')}</dt>
          <dd>{integer(counter.quota)}</dd>
          <dt>{t('percent')}</dt>
          <dd>{percent(counter.percent / 100, undefined, 2)}</dd>
          <dt>{t('remaining')}</dt>
          <dd>{integer(counter.remaining)}</dd>
          <dt>{t('sessions')}</dt>
          <dd>{integer(counter.sessions)}</dd>
          <dt>{t('last_update')}</dt>
          <dd>
            {counter.last_update ? (
              <time dateTime={new Date(counter.last_update).toISOString()} title={dateTime(counter.last_update)}>
                {relative(counter.last_update)}
              </time>
            ) : (
              '—'
            )}
          </dd>
        </dl>
      </div>
    </>
  );
}

const syncTone: Record<string, string> = {
  manual: 'info',
  clipboard: '',
  estimate: 'warning',
  import: '',
  api: 'success',
};

function SyncBadge({ type }: { type: string }) {
  const { t } = useTranslation(ns);
  const known = (SYNC_TYPES as readonly string[]).includes(type);
  return <span className={`badge ${syncTone[type] ?? ''}`}>{known ? t(`sync_${type}`) : type}</span>;
}

function History({ name }: { name: string }) {
  const { t } = useTranslation(ns);
  const history = useInfiniteQuery({
    queryKey: ['counters', 'readings', name],
    initialPageParam: undefined as number | undefined,
    queryFn: ({ pageParam }) =>
      unwrap(
        client.GET('/api/v1/counters/{name}/readings', {
          params: { path: { name }, query: { before: pageParam, limit: HISTORY_PAGE } },
        }),
      ),
    getNextPageParam: (last: ReadingView[]) => (last.length === HISTORY_PAGE ? last[last.length - 1]?.id : undefined),
  });
  const readings = useMemo(() => history.data?.pages.flat() ?? [], [history.data]);

  return (
    <section className="card" aria-labelledby="counter-history-title">
      <div className="row">
        <h2 id="counter-history-title">{t('history')}</h2>
        <span className="muted counters-hint">{t('history_hint')}</span>
      </div>
      {history.isPending ? (
        <Loading />
      ) : history.isError ? (
        <ErrorState error={history.error} onRetry={() => void history.refetch()} />
      ) : readings.length === 0 ? (
        <Empty>{t('no_history')}</Empty>
      ) : (
        <>
          <ol className="counters-stream">
            {readings.map((r) => (
              <ReadingItem key={r.id} reading={r} />
            ))}
          </ol>
          <div className="row counters-more">
            {history.hasNextPage ? (
              <button type="button" onClick={() => void history.fetchNextPage()} disabled={history.isFetchingNextPage}>
                {history.isFetchingNextPage ? t('loading_more') : t('load_more')}
              </button>
            ) : (
              readings.length > HISTORY_PAGE && <span className="muted">{t('end_of_history')}</span>
            )}
          </div>
        </>
      )}
    </section>
  );
}

function ReadingItem({ reading: r }: { reading: ReadingView }) {
  const { t } = useTranslation(ns);
  return (
    <li className={r.reset ? 'reset' : ''}>
      <div className="counters-stream-head">
        {r.reset ? (
          <span className="badge warning" title={t('reset_to', { value: integer(r.reading) })}>
            ↺ {t('reset')}
          </span>
        ) : (
          <span className="counters-increment" title={integer(r.increment)}>
            +{compact(r.increment)}
          </span>
        )}
        <span className="muted">{t('reading_of', { value: integer(r.reading) })}</span>
        <SyncBadge type={r.sync_type} />
        <span className="spacer" />
        <time dateTime={new Date(r.ts).toISOString()} title={relative(r.ts)} className="muted">
          {dateTime(r.ts)}
        </time>
      </div>
      <div className={r.event ? 'counters-event' : 'counters-event muted'}>{r.event || t('no_event')}</div>
      {(r.conversation_id || r.actor) && (
        <div className="counters-meta muted">
          {r.conversation_id && (
            <span>
              {t('conversation')}: <code>{r.conversation_id}</code>
            </span>
          )}
          {r.actor && <span>{t('by', { actor: r.actor })}</span>}
        </div>
      )}
    </li>
  );
}

function CliHints({ name }: { name: string }) {
  const { t } = useTranslation(ns);
  const origin = typeof window === 'undefined' ? '' : window.location.origin;
  const cli = [
    `tollgate sync record 350K "finished the design" --counter ${name}`,
    `tollgate sync quick --counter ${name}`,
    `tollgate sync status --counter ${name}`,
    `tollgate sync estimate "user text" "assistant text" --counter ${name}`,
  ].join('\n');
  const curl = `curl -X POST ${origin}/api/v1/counters/${name}/readings \\
  -H "Authorization: Bearer tgp_…" -H "Content-Type: application/json" \\
  -d '{"reading": "350K", "event": "finished the design", "sync_type": "api"}'`;
  return (
    <section className="card" aria-labelledby="counter-cli-title">
      <h2 id="counter-cli-title">{t('cli_title')}</h2>
      <p className="muted">{t('cli_intro')}</p>
      <div className="counters-code">
        <pre>
          <code>{cli}</code>
        </pre>
        <CopyButton text={cli} />
      </div>
      <p className="muted">
        {t('cli_api')} <Link to="/tokens">{t('cli_tokens_link')}</Link>
      </p>
      <div className="counters-code">
        <pre>
          <code>{curl}</code>
        </pre>
        <CopyButton text={curl} />
      </div>
    </section>
  );
}

function RecordDialog({
  open,
  mode,
  counterName,
  counters,
  current,
  onClose,
  onRecorded,
}: {
  open: boolean;
  mode: 'record' | 'new';
  counterName: string;
  counters: CounterStatus[];
  current: CounterStatus | null;
  onClose: () => void;
  onRecorded: (name: string) => void;
}) {
  const { t } = useTranslation([ns, 'common']);
  const toast = useToast();
  const queries = useQueryClient();
  const [name, setName] = useState('');
  const [text, setText] = useState('');
  const [event, setEvent] = useState('');
  const [conversation, setConversation] = useState('');
  const [syncType, setSyncType] = useState<'manual' | 'clipboard'>('manual');
  const [pasteNote, setPasteNote] = useState<string | null>(null);
  const [nameTouched, setNameTouched] = useState(false);

  const target = mode === 'new' ? name.trim() : counterName;
  const existing = mode === 'new' ? (counters.find((c) => c.name === target) ?? null) : current;
  const nameValid = isCounterName(target);

  const mutation = useMutation({
    mutationFn: () =>
      unwrap(
        client.POST('/api/v1/counters/{name}/readings', {
          params: { path: { name: target } },
          body: {
            reading: text.trim(),
            event: event.trim(),
            conversation_id: conversation.trim() || undefined,
            sync_type: syncType,
          },
        }),
      ),
    onSuccess: async (result) => {
      const r = result.reading;
      toast(
        r.reset
          ? t('recorded_reset', { name: result.counter.name, value: integer(r.reading) })
          : t('recorded', { name: result.counter.name, increment: integer(r.increment) }),
      );
      queries.setQueryData(statusQueryKey(result.counter.name), result.counter);
      await queries.invalidateQueries({ queryKey: ['counters'] });
      onRecorded(result.counter.name);
    },
  });

  // Reset the form each time the dialog opens.
  useEffect(() => {
    if (open) {
      setName('');
      setText('');
      setEvent('');
      setConversation('');
      setSyncType('manual');
      setPasteNote(null);
      setNameTouched(false);
      mutation.reset();
    }
  }, [open]);

  const apiError = mutation.error instanceof ApiError ? mutation.error : null;
  const fieldError = (field: string) => (apiError?.field === field ? parseMessage(apiError) : null);
  const fieldErrors = ['tokens', 'reading', 'event', 'conversation_id', 'counter'];
  const generalError = mutation.error && !(apiError?.field && fieldErrors.includes(apiError.field)) ? mutation.error : null;

  async function paste() {
    try {
      const clip = await navigator.clipboard.readText();
      setText(clip.trim().slice(0, 200));
      setSyncType('clipboard');
      setPasteNote(t('pasted'));
    } catch {
      setPasteNote(t('paste_failed'));
    }
  }

  function submit(e: FormEvent) {
    e.preventDefault();
    setNameTouched(true);
    if (!nameValid || text.trim() === '') return;
    mutation.mutate();
  }

  const formId = useId();
  return (
    <Dialog
      open={open}
      onClose={onClose}
      title={mode === 'new' ? t('dialog_new_title') : t('dialog_title')}
      footer={
        <FormButtons
          onCancel={onClose}
          label={t('submit')}
          busy={mutation.isPending}
          busyLabel={t('submitting')}
          disabled={text.trim() === '' || (mode === 'new' && !nameValid)}
          form={formId}
        />
      }
    >
      <form id={formId} onSubmit={submit} noValidate>
        <p className="muted counters-dialog-intro">
          {mode === 'new' ? t('dialog_new_intro', { quota: integer(DEFAULT_QUOTA) }) : t('dialog_intro')}
        </p>
        <ErrorAlert error={generalError} />
        {mode === 'new' ? (
          <Field
            label={t('counter_name')}
            help={existing ? t('counter_exists') : t('counter_name_help')}
            error={
              fieldError('counter') ?? (nameTouched && name !== '' && !nameValid ? t('counter_name_invalid') : null)
            }
          >
            <input
              name="counter"
              autoComplete="off"
              spellCheck={false}
              maxLength={64}
              required
              value={name}
              aria-invalid={(nameTouched && !nameValid) || Boolean(fieldError('counter'))}
              onChange={(e) => setName(e.target.value)}
              onBlur={() => setNameTouched(true)}
            />
          </Field>
        ) : (
          <p className="counters-dialog-target">
            {t('counter')}: <strong className="mono">{counterName}</strong>
          </p>
        )}
        <ReadingField
          value={text}
          onChange={(v) => {
            setText(v);
            if (syncType === 'clipboard') {
              setSyncType('manual');
              setPasteNote(null);
            }
          }}
          used={existing ? existing.used : null}
          quota={existing ? existing.quota : DEFAULT_QUOTA}
          error={fieldError('tokens') ?? fieldError('reading')}
          extra={
            canReadClipboard() ? (
              <button type="button" onClick={() => void paste()}>
                {t('paste')}
              </button>
            ) : null
          }
        />
        {pasteNote && <p className="muted counters-hint">{pasteNote}</p>}
        <Field label={t('event')} help={t('event_help')} error={fieldError('event')}>
          <input
            name="event"
            maxLength={500}
            placeholder={t('event_placeholder')}
            value={event}
            aria-invalid={Boolean(fieldError('event'))}
            onChange={(e) => setEvent(e.target.value)}
          />
        </Field>
        <Field label={t('conversation_id')} error={fieldError('conversation_id')}>
          <input
            name="conversation_id"
            maxLength={200}
            autoComplete="off"
            spellCheck={false}
            value={conversation}
            aria-invalid={Boolean(fieldError('conversation_id'))}
            onChange={(e) => setConversation(e.target.value)}
          />
        </Field>
      </form>
    </Dialog>
  );
}

function QuotaDialog({ open, counter, onClose }: { open: boolean; counter: CounterStatus; onClose: () => void }) {
  const { t } = useTranslation([ns, 'common']);
  const toast = useToast();
  const queries = useQueryClient();
  const [text, setText] = useState('');
  const id = useId();
  const formId = useId();
  const parsed = useParsedFigure(text);


  const mutation = useMutation({
    mutationFn: () =>
      unwrap(
        client.PUT('/api/v1/counters/{name}/quota', {
          params: { path: { name: counter.name } },
          body: { quota: text.trim() },
        }),
      ),
    onSuccess: async (updated) => {
      toast(t('quota_saved', { name: updated.name, quota: integer(updated.quota) }));
      queries.setQueryData(statusQueryKey(updated.name), updated);
      await queries.invalidateQueries({ queryKey: ['counters'] });
      onClose();
    },
  });

  // Start from the current quota each time the dialog opens.
  useEffect(() => {
    if (open) {
      setText(String(counter.quota));
      mutation.reset();
    }
  }, [open]);
  const apiError = mutation.error instanceof ApiError ? mutation.error : null;
  const quotaError = apiError?.field === 'quota' ? parseMessage(apiError) : null;

  return (
    <Dialog
      open={open}
      onClose={onClose}
      title={t('set_quota_title', { name: counter.name })}
      footer={
        <FormButtons
          onCancel={onClose}
          label={t('common:save')}
          busy={mutation.isPending}
          disabled={text.trim() === '' || parsed.status === 'error'}
          form={formId}
        />
      }
    >
      <form
        id={formId}
        onSubmit={(e) => {
          e.preventDefault();
          if (text.trim() !== '') mutation.mutate();
        }}
        noValidate
      >
        <ErrorAlert error={quotaError ? null : mutation.error} />
        <div className="field">
          <label htmlFor={id} className="form-label">
            {t('quota')}
          </label>
          <input
            id={id}
            name="quota"
            autoComplete="off"
            spellCheck={false}
            maxLength={200}
            value={text}
            aria-invalid={parsed.status === 'error' || Boolean(quotaError)}
            aria-describedby={`${id}-feedback`}
            onChange={(e) => setText(e.target.value)}
          />
          <div id={`${id}-feedback`} className="counters-feedback" aria-live="polite">
            {parsed.status === 'ok' ? (
              <div className="alert success counters-parse-ok">
                <strong>{t('parsed', { value: integer(parsed.tokens) })}</strong>
                {parsed.tokens > 0 && (
                  <div>
                    {t('quota_preview', { used: integer(counter.used), percent: percent(counter.used / parsed.tokens) })}
                  </div>
                )}
              </div>
            ) : parsed.status === 'error' ? (
              <div className="alert error counters-parse-error">{parsed.message}</div>
            ) : parsed.status === 'parsing' ? (
              <small className="help">{t('parsing')}</small>
            ) : (
              <small className="help">{t('quota_help')}</small>
            )}
          </div>
          {quotaError && (
            <small className="error" role="alert">
              {quotaError}
            </small>
          )}
        </div>
      </form>
    </Dialog>
  );
}
