// The console API reference, rendered from the OpenAPI document the server serves
// (`/api/openapi.json`): operations grouped by tag, searchable, with parameters and the schemas
// of requests and answers. The full interactive page is the server's own `/api/docs`.
import { useDeferredValue, useId, useMemo, useState, type ReactNode } from 'react';
import { Link } from 'react-router';
import { useQuery } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { ApiError, toApiError } from '../api/client';
import { defineMessages } from '../i18n';
import { integer } from '../format';
import { Drawer, Empty, QueryState, Segmented } from '../components/ui';

const ns = defineMessages(
  'apidocs',
  {
    title: 'API reference',
    subtitle: 'Everything the console does, it does through this API. Script it with a personal access token.',
    version: 'Version {{version}}',
    interactive: 'Interactive docs',
    raw_json: 'OpenAPI JSON',
    new_tab: '(opens in a new tab)',
    auth_title: 'Authentication',
    auth_browser_title: 'In the browser',
    auth_browser:
      'The console signs in with a session cookie. Every write (POST, PUT, PATCH, DELETE) also sends the X-CSRF-Token header with the csrf_token from GET /api/v1/auth/me.',
    auth_scripts_title: 'Scripts and the CLI',
    auth_scripts:
      'Send a personal access token as Authorization: Bearer tgp_…. It acts as you, with your roles; no cookie or CSRF header is needed.',
    auth_tokens_link: 'Create a token',
    auth_gateway_title: 'The gateway',
    auth_gateway:
      'API keys (ntk_…) authenticate calls to models on the gateway listener only. The console API does not accept them.',
    search: 'Search operations',
    search_placeholder: 'Path, summary, parameter or schema…',
    method: 'Method',
    count: '{{shown}} of {{total}} operations',
    tags: 'Sections',
    no_match: 'No operation matches “{{query}}”.',
    no_operations: 'The document lists no operations.',
    operation_id: 'Operation id',
    parameters: 'Parameters',
    param_name: 'Name',
    param_in: 'In',
    param_type: 'Type',
    param_required: 'Required',
    param_description: 'Description',
    required: 'required',
    optional: 'optional',
    request_body: 'Request body',
    responses: 'Responses',
    no_body: 'no body',
    public: 'No sign-in',
    ingest_auth: 'Ingest secret',
    deprecated: 'Deprecated',
    schema: 'Schema',
    schema_title: 'Schema {{name}}',
    properties: 'Properties',
    one_of: 'One of',
    values: 'Values',
    no_properties: 'No properties.',
    unknown_schema: 'This schema is not in the document.',
    load_failed: 'The OpenAPI document could not be loaded.',
  },
  {
    'zh-CN': {
      title: 'API 参考',
      subtitle: '控制台的所有功能都通过这套 API 完成。使用个人访问令牌即可编写脚本。',
      version: '版本 {{version}}',
      interactive: '交互式文档',
      raw_json: 'OpenAPI JSON',
      new_tab: '（在新标签页中打开）',
      auth_title: '身份验证',
      auth_browser_title: '在浏览器中',
      auth_browser:
        '控制台使用会话 Cookie 登录。每个写请求（POST、PUT、PATCH、DELETE）还需发送 X-CSRF-Token 请求头，其值为 GET /api/v1/auth/me 返回的 csrf_token。',
      auth_scripts_title: '脚本与 CLI',
      auth_scripts: '以 Authorization: Bearer tgp_… 发送个人访问令牌。它以你的身份和角色操作，无需 Cookie 或 CSRF 请求头。',
      auth_tokens_link: '创建令牌',
      auth_gateway_title: '网关',
      auth_gateway: 'API 密钥（ntk_…）只用于在网关监听端口上调用模型。控制台 API 不接受它们。',
      search: '搜索接口',
      search_placeholder: '路径、摘要、参数或 Schema…',
      method: '方法',
      count: '显示 {{shown}} / {{total}} 个接口',
      tags: '分组',
      no_match: '没有与“{{query}}”匹配的接口。',
      no_operations: '文档中没有任何接口。',
      operation_id: '操作 ID',
      parameters: '参数',
      param_name: '名称',
      param_in: '位置',
      param_type: '类型',
      param_required: '必填',
      param_description: '说明',
      required: '必填',
      optional: '可选',
      request_body: '请求体',
      responses: '响应',
      no_body: '无响应体',
      public: '无需登录',
      ingest_auth: '采集密钥',
      deprecated: '已弃用',
      schema: 'Schema',
      schema_title: 'Schema {{name}}',
      properties: '属性',
      one_of: '以下之一',
      values: '取值',
      no_properties: '没有属性。',
      unknown_schema: '文档中没有这个 Schema。',
      load_failed: '无法加载 OpenAPI 文档。',
    },
    'zh-TW': {
      title: 'API 參考',
      subtitle: '主控台的所有功能都透過這套 API 完成。使用個人存取權杖即可撰寫指令碼。',
      version: '版本 {{version}}',
      interactive: '互動式文件',
      raw_json: 'OpenAPI JSON',
      new_tab: '（在新分頁中開啟）',
      auth_title: '身分驗證',
      auth_browser_title: '在瀏覽器中',
      auth_browser:
        '主控台以工作階段 Cookie 登入。每個寫入請求（POST、PUT、PATCH、DELETE）還需傳送 X-CSRF-Token 標頭，其值為 GET /api/v1/auth/me 回傳的 csrf_token。',
      auth_scripts_title: '指令碼與 CLI',
      auth_scripts: '以 Authorization: Bearer tgp_… 傳送個人存取權杖。它以你的身分與角色操作，不需要 Cookie 或 CSRF 標頭。',
      auth_tokens_link: '建立權杖',
      auth_gateway_title: '閘道',
      auth_gateway: 'API 金鑰（ntk_…）只用於在閘道監聽埠上呼叫模型。主控台 API 不接受它們。',
      search: '搜尋介面',
      search_placeholder: '路徑、摘要、參數或 Schema…',
      method: '方法',
      count: '顯示 {{shown}} / {{total}} 個介面',
      tags: '分類',
      no_match: '沒有與「{{query}}」相符的介面。',
      no_operations: '文件中沒有任何介面。',
      operation_id: '操作 ID',
      parameters: '參數',
      param_name: '名稱',
      param_in: '位置',
      param_type: '型別',
      param_required: '必填',
      param_description: '說明',
      required: '必填',
      optional: '選填',
      request_body: '請求本文',
      responses: '回應',
      no_body: '無回應本文',
      public: '不需登入',
      ingest_auth: '收集密鑰',
      deprecated: '已棄用',
      schema: 'Schema',
      schema_title: 'Schema {{name}}',
      properties: '屬性',
      one_of: '以下其一',
      values: '取值',
      no_properties: '沒有屬性。',
      unknown_schema: '文件中沒有這個 Schema。',
      load_failed: '無法載入 OpenAPI 文件。',
    },
  },
);

// ---- The parts of an OpenAPI 3.1 document this page reads ----

/** A JSON Schema as found in the document (only the keys shown here). */
export interface JsonSchema {
  $ref?: string;
  type?: string | string[];
  format?: string;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  allOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  enum?: unknown[];
  description?: string;
  additionalProperties?: boolean | JsonSchema;
}

interface MediaType {
  schema?: JsonSchema;
}

interface RawParameter {
  name: string;
  in: string;
  description?: string;
  required?: boolean;
  schema?: JsonSchema;
}

interface RawOperation {
  tags?: string[];
  summary?: string;
  description?: string;
  operationId?: string;
  parameters?: RawParameter[];
  requestBody?: { content?: Record<string, MediaType>; required?: boolean };
  responses?: Record<string, { description?: string; content?: Record<string, MediaType> }>;
  security?: Record<string, string[]>[];
  deprecated?: boolean;
}

export interface OpenApiDocument {
  openapi?: string;
  info?: { title?: string; description?: string; version?: string };
  paths?: Record<string, Record<string, RawOperation>>;
  components?: { schemas?: Record<string, JsonSchema> };
  tags?: { name: string; description?: string }[];
}

export const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;
export type Method = (typeof METHODS)[number];

export interface ApiParameter {
  name: string;
  in: string;
  required: boolean;
  type: string;
  description: string;
}

export interface ApiResponse {
  status: string;
  description: string;
  /** The schema, as a name (`KeyView`, `KeyView[]`, `string`), or null for no body. */
  schema: string | null;
  /** Component schemas it refers to. */
  refs: string[];
}

/** One operation, flattened for display and search. */
export interface ApiOperation {
  id: string;
  method: Method;
  path: string;
  tag: string;
  summary: string;
  description: string;
  operationId: string;
  parameters: ApiParameter[];
  requestBody: { schema: string; refs: string[]; required: boolean } | null;
  responses: ApiResponse[];
  /** `default` (session or token), `public`, or `ingest`. */
  auth: 'default' | 'public' | 'ingest';
  deprecated: boolean;
}

export interface ApiTagGroup {
  name: string;
  description: string;
  operations: ApiOperation[];
}

const REF_PREFIX = '#/components/schemas/';

/** The component name of a `$ref`. */
export function refName(ref: string): string {
  return ref.startsWith(REF_PREFIX) ? ref.slice(REF_PREFIX.length) : ref;
}

/** A short type for a schema: `KeyView`, `KeyView[]`, `string | null`, `integer (int64)`. */
export function schemaName(schema: JsonSchema | undefined): string {
  if (!schema) return 'any';
  if (schema.$ref) return refName(schema.$ref);
  if (schema.oneOf || schema.anyOf) return (schema.oneOf ?? schema.anyOf ?? []).map(schemaName).join(' | ');
  if (schema.allOf) return schema.allOf.map(schemaName).join(' & ');
  const types = Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : [];
  if (types.includes('array')) {
    const item = `${schemaName(schema.items)}[]`;
    return types.includes('null') ? `${item} | null` : item;
  }
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(' | ');
  if (types.length === 0) return schema.properties ? 'object' : 'any';
  return types.map((t) => (t === 'integer' || t === 'number') && schema.format ? `${t} (${schema.format})` : t).join(' | ');
}

/** Every component schema a schema refers to, directly. */
export function schemaRefs(schema: JsonSchema | undefined): string[] {
  if (!schema) return [];
  const out = new Set<string>();
  const walk = (s: JsonSchema | undefined) => {
    if (!s) return;
    if (s.$ref) out.add(refName(s.$ref));
    if (s.items) walk(s.items);
    (s.oneOf ?? []).forEach(walk);
    (s.anyOf ?? []).forEach(walk);
    (s.allOf ?? []).forEach(walk);
  };
  walk(schema);
  return [...out];
}

function jsonSchemaOf(content: Record<string, MediaType> | undefined): JsonSchema | undefined {
  if (!content) return undefined;
  return (content['application/json'] ?? Object.values(content)[0])?.schema;
}

/** Flattens the document's paths into operations, in document order. */
export function collectOperations(doc: OpenApiDocument): ApiOperation[] {
  const out: ApiOperation[] = [];
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const body = jsonSchemaOf(op.requestBody?.content);
      const security = op.security;
      const auth: ApiOperation['auth'] = !security
        ? 'default'
        : security.some((s) => Object.keys(s).some((k) => k.startsWith('ingest')))
          ? 'ingest'
          : security.some((s) => Object.keys(s).length === 0)
            ? 'public'
            : 'default';
      out.push({
        id: `op-${op.operationId ?? `${method}-${path}`}`.replace(/[^A-Za-z0-9_-]+/g, '-'),
        method,
        path,
        tag: op.tags?.[0] ?? 'other',
        summary: op.summary ?? '',
        description: op.description ?? '',
        operationId: op.operationId ?? '',
        parameters: (op.parameters ?? []).map((p) => ({
          name: p.name,
          in: p.in,
          required: Boolean(p.required),
          type: schemaName(p.schema),
          description: p.description ?? '',
        })),
        requestBody: body
          ? { schema: schemaName(body), refs: schemaRefs(body), required: Boolean(op.requestBody?.required) }
          : null,
        responses: Object.entries(op.responses ?? {}).map(([status, r]) => {
          const schema = jsonSchemaOf(r.content);
          return {
            status,
            description: r.description ?? '',
            schema: schema ? schemaName(schema) : null,
            refs: schemaRefs(schema),
          };
        }),
        auth,
        deprecated: Boolean(op.deprecated),
      });
    }
  }
  return out;
}

/**
 * Groups operations by their first tag: the document's tags first, in its order, then any other
 * tag alphabetically. Empty groups are left out.
 */
export function groupByTag(operations: ApiOperation[], tags: OpenApiDocument['tags'] = []): ApiTagGroup[] {
  const groups = new Map<string, ApiTagGroup>();
  for (const t of tags) groups.set(t.name, { name: t.name, description: t.description ?? '', operations: [] });
  const extra: ApiTagGroup[] = [];
  for (const op of operations) {
    let group = groups.get(op.tag);
    if (!group) {
      group = { name: op.tag, description: '', operations: [] };
      groups.set(op.tag, group);
      extra.push(group);
    }
    group.operations.push(op);
  }
  const declared = tags.map((t) => groups.get(t.name)!);
  extra.sort((a, b) => a.name.localeCompare(b.name));
  return [...declared, ...extra].filter((g) => g.operations.length > 0);
}

/**
 * The operations matching a search: every word of `query` must appear (case-insensitively) in
 * the method, path, tag, summary, description, operation id, a parameter or a schema name. A
 * word that is exactly a method (`post`) matches that method only. `method` narrows further.
 */
export function filterOperations(operations: ApiOperation[], query: string, method: Method | 'all' = 'all'): ApiOperation[] {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  return operations.filter((op) => {
    if (method !== 'all' && op.method !== method) return false;
    if (words.length === 0) return true;
    const text = [
      op.path,
      op.tag,
      op.summary,
      op.description,
      op.operationId,
      ...op.parameters.map((p) => p.name),
      ...(op.requestBody?.refs ?? []),
      ...op.responses.flatMap((r) => r.refs),
    ]
      .join('\n')
      .toLowerCase();
    return words.every((w) => ((METHODS as readonly string[]).includes(w) ? op.method === w : text.includes(w)));
  });
}

async function fetchDocument(): Promise<OpenApiDocument> {
  let response: Response;
  try {
    response = await fetch('/api/openapi.json', { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  } catch {
    throw new ApiError(0, 'network', 'The console could not be reached.');
  }
  const body: unknown = await response.json().catch(() => undefined);
  if (!response.ok) throw toApiError(response.status, body);
  return body as OpenApiDocument;
}

/** Text with `backticks` shown as code, as the document's descriptions are written. */
export function InlineCode({ text }: { text: string }) {
  const parts = text.split('`');
  // An odd number of parts means balanced backticks; otherwise show the text as it is.
  if (parts.length < 3 || parts.length % 2 === 0) return <>{text}</>;
  return <>{parts.map((part, i) => (i % 2 === 1 ? <code key={i}>{part}</code> : part))}</>;
}

const methodTone: Record<Method, string> = {
  get: 'info',
  post: 'success',
  put: 'warning',
  patch: 'warning',
  delete: 'danger',
};

function MethodBadge({ method }: { method: Method }) {
  return <span className={`badge ${methodTone[method]} apidocs-method`}>{method.toUpperCase()}</span>;
}

export default function ApiDocsPage() {
  const { t } = useTranslation(ns);
  const doc = useQuery({ queryKey: ['openapi'], queryFn: fetchDocument, staleTime: Infinity });

  return (
    <div className="stack">
      <div className="page-header">
        <div>
          <h1>{t('title')}</h1>
          <p className="muted page-lede">
            {t('subtitle')}
            {doc.data?.info?.version && (
              <>
                {' '}
                <span className="badge">{t('version', { version: doc.data.info.version })}</span>
              </>
            )}
          </p>
        </div>
        <span className="spacer" />
        <a className="button" href="/api/openapi.json" target="_blank" rel="noopener noreferrer">
          {t('raw_json')}
          <span className="sr-only"> {t('new_tab')}</span>
        </a>
        <a className="button primary" href="/api/docs" target="_blank" rel="noopener noreferrer">
          {t('interactive')} <span aria-hidden="true">↗</span>
          <span className="sr-only"> {t('new_tab')}</span>
        </a>
      </div>

      <Authentication />

      <QueryState query={doc} isEmpty={(d) => collectOperations(d).length === 0} empty={t('no_operations')}>
        {(d) => <Reference doc={d} />}
      </QueryState>
    </div>
  );
}

function Authentication() {
  const { t } = useTranslation(ns);
  return (
    <section className="card" aria-labelledby="apidocs-auth">
      <h2 id="apidocs-auth">{t('auth_title')}</h2>
      <div className="grid three apidocs-auth">
        <div>
          <h3>{t('auth_browser_title')}</h3>
          <p className="muted">{t('auth_browser')}</p>
          <pre className="snippet">
            <code>{'Cookie: tollgate_session=…\nX-CSRF-Token: <csrf_token>'}</code>
          </pre>
        </div>
        <div>
          <h3>{t('auth_scripts_title')}</h3>
          <p className="muted">
            {t('auth_scripts')} <Link to="/tokens">{t('auth_tokens_link')}</Link>
          </p>
          <pre className="snippet">
            <code>{'Authorization: Bearer tgp_…'}</code>
          </pre>
        </div>
        <div>
          <h3>{t('auth_gateway_title')}</h3>
          <p className="muted">{t('auth_gateway')}</p>
          <pre className="snippet">
            <code>{'Authorization: Bearer ntk_…'}</code>
          </pre>
        </div>
      </div>
    </section>
  );
}

function Reference({ doc }: { doc: OpenApiDocument }) {
  const { t } = useTranslation([ns, 'common']);
  const [query, setQuery] = useState('');
  const [method, setMethod] = useState<Method | 'all'>('all');
  const [schema, setSchema] = useState<string | null>(null);
  const searchId = useId();
  const deferred = useDeferredValue(query);
  const operations = useMemo(() => collectOperations(doc), [doc]);
  const shown = useMemo(() => filterOperations(operations, deferred, method), [operations, deferred, method]);
  const groups = useMemo(() => groupByTag(shown, doc.tags), [shown, doc.tags]);
  // With a few hits, show them opened.
  const expand = (deferred.trim() !== '' || method !== 'all') && shown.length <= 6;

  return (
    <>
      <div className="filters apidocs-toolbar">
        <label htmlFor={searchId} className="apidocs-search">
          {t('search')}
          <input
            id={searchId}
            type="search"
            value={query}
            placeholder={t('search_placeholder')}
            onChange={(e) => setQuery(e.target.value)}
          />
        </label>
        <Segmented
          label={t('method')}
          value={method}
          onChange={setMethod}
          options={[
            { value: 'all', label: t('common:all') },
            ...METHODS.map((m) => ({ value: m, label: m.toUpperCase() })),
          ]}
        />
        <span className="muted" role="status" aria-live="polite">
          {t('count', { shown: integer(shown.length), total: integer(operations.length) })}
        </span>
      </div>

      {groups.length === 0 ? (
        <Empty>{t('no_match', { query: [deferred.trim(), method === 'all' ? '' : method.toUpperCase()].filter(Boolean).join(' ') })}</Empty>
      ) : (
        <div className="apidocs-layout">
          <nav className="card apidocs-nav" aria-label={t('tags')}>
            <ul>
              {groups.map((g) => (
                <li key={g.name}>
                  <a href={`#tag-${g.name}`}>
                    <span>{g.name}</span>
                    <span className="muted">{g.operations.length}</span>
                  </a>
                </li>
              ))}
            </ul>
          </nav>
          <div className="stack apidocs-groups">
            {groups.map((g) => (
              <section key={g.name} id={`tag-${g.name}`} className="card" aria-labelledby={`tag-${g.name}-title`}>
                <h2 id={`tag-${g.name}-title`} className="apidocs-tag">
                  {g.name}
                </h2>
                {g.description && <p className="muted apidocs-tag-description">{g.description}</p>}
                <div className="apidocs-ops">
                  {g.operations.map((op) => (
                    <OperationView key={op.id} op={op} open={expand} onSchema={setSchema} />
                  ))}
                </div>
              </section>
            ))}
          </div>
        </div>
      )}

      <SchemaDrawer doc={doc} name={schema} onSchema={setSchema} onClose={() => setSchema(null)} />
    </>
  );
}

function SchemaLinks({
  text,
  refs,
  onSchema,
}: {
  text: string;
  refs: string[];
  onSchema: (name: string) => void;
}) {
  const { t } = useTranslation(ns);
  if (refs.length === 0) return <code>{text}</code>;
  // Turn each referenced name inside the type text into a button opening that schema.
  const pattern = new RegExp(`\\b(${refs.map((r) => r.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})\\b`, 'g');
  const parts: ReactNode[] = [];
  let last = 0;
  for (const m of text.matchAll(pattern)) {
    const name = m[1]!;
    if (m.index > last) parts.push(text.slice(last, m.index));
    parts.push(
      <button
        key={`${name}-${m.index}`}
        type="button"
        className="apidocs-schema-link"
        onClick={() => onSchema(name)}
        aria-label={`${t('schema')} ${name}`}
      >
        {name}
      </button>,
    );
    last = m.index + name.length;
  }
  if (last < text.length) parts.push(text.slice(last));
  return <code>{parts}</code>;
}

function OperationView({ op, open, onSchema }: { op: ApiOperation; open: boolean; onSchema: (name: string) => void }) {
  const { t } = useTranslation(ns);
  return (
    <details id={op.id} className="apidocs-op" open={open || undefined} key={open ? 'open' : 'closed'}>
      <summary>
        <MethodBadge method={op.method} />
        <code className="apidocs-path">{op.path}</code>
        <span className="apidocs-summary">
          <InlineCode text={op.summary} />
        </span>
        {op.auth === 'public' && <span className="badge">{t('public')}</span>}
        {op.auth === 'ingest' && <span className="badge warning">{t('ingest_auth')}</span>}
        {op.deprecated && <span className="badge danger">{t('deprecated')}</span>}
      </summary>
      <div className="apidocs-op-body">
        {op.description && op.description !== op.summary && (
          <p>
            <InlineCode text={op.description} />
          </p>
        )}
        {op.operationId && (
          <p className="muted apidocs-small">
            {t('operation_id')}: <code>{op.operationId}</code>
          </p>
        )}
        {op.parameters.length > 0 && (
          <>
            <h3>{t('parameters')}</h3>
            <div className="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th scope="col">{t('param_name')}</th>
                    <th scope="col">{t('param_in')}</th>
                    <th scope="col">{t('param_type')}</th>
                    <th scope="col">{t('param_description')}</th>
                  </tr>
                </thead>
                <tbody>
                  {op.parameters.map((p) => (
                    <tr key={`${p.in}-${p.name}`}>
                      <td>
                        <code>{p.name}</code>
                        {p.required && <span className="apidocs-required"> {t('required')}</span>}
                      </td>
                      <td>{p.in}</td>
                      <td>
                        <code>{p.type}</code>
                      </td>
                      <td>
                        <InlineCode text={p.description} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </>
        )}
        {op.requestBody && (
          <>
            <h3>{t('request_body')}</h3>
            <p>
              <SchemaLinks text={op.requestBody.schema} refs={op.requestBody.refs} onSchema={onSchema} />{' '}
              <span className="muted">{op.requestBody.required ? t('required') : t('optional')}</span>
            </p>
          </>
        )}
        <h3>{t('responses')}</h3>
        <ul className="apidocs-responses">
          {op.responses.map((r) => (
            <li key={r.status}>
              <span className={`badge ${r.status.startsWith('2') ? 'success' : r.status.startsWith('4') || r.status.startsWith('5') ? 'danger' : ''}`}>
                {r.status}
              </span>{' '}
              {r.schema ? <SchemaLinks text={r.schema} refs={r.refs} onSchema={onSchema} /> : <span className="muted">{t('no_body')}</span>}
              {r.description && <span className="muted"> — {r.description}</span>}
            </li>
          ))}
        </ul>
      </div>
    </details>
  );
}

/** A schema's own properties, with those of `allOf` parts merged in. */
export function schemaProperties(
  doc: OpenApiDocument,
  schema: JsonSchema,
  seen: Set<string> = new Set(),
): { name: string; schema: JsonSchema; required: boolean }[] {
  const out: { name: string; schema: JsonSchema; required: boolean }[] = [];
  const parts = schema.allOf ?? [schema];
  for (const part of parts) {
    if (part.$ref) {
      const name = refName(part.$ref);
      const target = doc.components?.schemas?.[name];
      if (seen.has(name) || !target) continue;
      seen.add(name);
      for (const p of schemaProperties(doc, target, seen)) {
        if (!out.some((o) => o.name === p.name)) out.push(p);
      }
      continue;
    }
    const required = new Set(part.required ?? []);
    for (const [name, s] of Object.entries(part.properties ?? {})) {
      if (!out.some((p) => p.name === name)) out.push({ name, schema: s, required: required.has(name) });
    }
  }
  return out;
}

function SchemaDrawer({
  doc,
  name,
  onSchema,
  onClose,
}: {
  doc: OpenApiDocument;
  name: string | null;
  onSchema: (name: string) => void;
  onClose: () => void;
}) {
  const { t } = useTranslation(ns);
  const schema = name ? doc.components?.schemas?.[name] : undefined;
  const properties = schema ? schemaProperties(doc, schema) : [];
  const variants = schema?.oneOf ?? schema?.anyOf;
  return (
    <Drawer open={name !== null} onClose={onClose} title={t('schema_title', { name: name ?? '' })}>
      {!schema ? (
        <p className="muted">{t('unknown_schema')}</p>
      ) : (
        <div className="stack">
          {schema.description && (
            <p style={{ margin: 0 }}>
              <InlineCode text={schema.description} />
            </p>
          )}
          {variants && (
            <div>
              <h3>{t('one_of')}</h3>
              <ul className="apidocs-responses">
                {variants.map((v, i) => (
                  <li key={i}>
                    <SchemaLinks text={schemaName(v)} refs={schemaRefs(v)} onSchema={onSchema} />
                    {v.description && (
                      <span className="muted">
                        {' — '}
                        <InlineCode text={v.description} />
                      </span>
                    )}
                  </li>
                ))}
              </ul>
            </div>
          )}
          {schema.enum && (
            <div>
              <h3>{t('values')}</h3>
              <p>
                {schema.enum.map((v) => (
                  <code key={String(v)} className="apidocs-enum">
                    {JSON.stringify(v)}
                  </code>
                ))}
              </p>
            </div>
          )}
          {!variants && !schema.enum && (
            <div>
              <h3>{t('properties')}</h3>
              {properties.length === 0 ? (
                <p className="muted">{t('no_properties')}</p>
              ) : (
                <dl className="apidocs-props">
                  {properties.map((p) => (
                    <div key={p.name}>
                      <dt>
                        <code>{p.name}</code>{' '}
                        <SchemaLinks text={schemaName(p.schema)} refs={schemaRefs(p.schema)} onSchema={onSchema} />
                        {p.required && <span className="apidocs-required"> {t('required')}</span>}
                      </dt>
                      {p.schema.description && (
                        <dd className="muted">
                          <InlineCode text={p.schema.description} />
                        </dd>
                      )}
                    </div>
                  ))}
                </dl>
              )}
            </div>
          )}
        </div>
      )}
    </Drawer>
  );
}
