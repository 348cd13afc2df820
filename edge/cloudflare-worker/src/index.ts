// tollgate's edge companion (seed 000): validates the key against the set synced from tollgate,
// matches the route by longest prefix, forwards with streaming and the upstream credential from
// Worker secrets, and reports every call — refusals included — to tollgate, batched through
// `ctx.waitUntil`, never delaying or failing the client's response. Refusals take tollgate's
// JSON error shape and codes; usage is captured by the gateway's rules (./capture.ts).

import { hideInjectedUsage, inspectRequest, settle, type RequestInfo } from "./capture.js";
import { keyHash, presentedKey, wellFormed } from "./key.js";
import { current, syncToKv, type EdgeKey, type EdgeRoute, type SyncEnv } from "./keyset.js";
import { redeliver, report, type ReportEnv, type UsageReport } from "./report.js";

export interface Env extends SyncEnv, ReportEnv {
  /** JSON by route name: {"url", "strip_prefix"?, "header"?, "value"?}. */
  UPSTREAMS: string;
  /** "0" turns the token estimate off (answers without usage are then reported with none). */
  ESTIMATE_TOKENS?: string;
}

interface Upstream {
  url: string;
  strip_prefix?: boolean;
  header?: string;
  value?: string;
}

const KEY_HEADERS = ["authorization", "x-api-key", "api-key"];

/** A refusal: its status, tollgate's code and the message the client is told. */
interface Refusal {
  status: number;
  code: string;
  message: string;
}

const refusal = (status: number, code: string, message: string): Refusal => ({ status, code, message });

/** The OpenAI-style error type of a code, as the gateway's refusals carry it. */
function errorType(code: string): string {
  if (code.endsWith("_api_key")) return "authentication_error";
  if (code.endsWith("_not_allowed")) return "permission_error";
  if (code === "no_route") return "not_found_error";
  return "api_error";
}

/** Anthropic's error type for a status, as the gateway answers on `anthropic` routes. */
function anthropicType(status: number): string {
  const types: Record<number, string> = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
  };
  return types[status] ?? "api_error";
}

/** The refusal in tollgate's error shape, or in Anthropic's once an `anthropic` route matched
 * (tollgate's code rides along as `error.code`), as the gateway answers. */
function refuse(r: Refusal, anthropic: boolean): Response {
  const body = anthropic
    ? { type: "error", error: { type: anthropicType(r.status), message: r.message, code: r.code } }
    : { error: { code: r.code, message: r.message, type: errorType(r.code) } };
  return Response.json(body, { status: r.status });
}

function globMatch(pattern: string, text: string): boolean {
  const re = new RegExp(`^${pattern.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`);
  return re.test(text);
}

function mayCall(key: EdgeKey, route: EdgeRoute): boolean {
  return key.routes ? key.routes.includes(route.id) : route.team_id === null || route.team_id === key.team_id;
}

const INVALID_KEY = refusal(401, "invalid_api_key", "the API key is not valid");

/** Why the key may not be used now, as tollgate's gateway would answer; null when it may. */
function keyVerdict(key: EdgeKey | undefined): Refusal | null {
  if (!key) return INVALID_KEY;
  if (key.status === "revoked") return refusal(401, "revoked_api_key", "the API key was revoked");
  if (key.status === "expired" || (key.expires_at !== null && key.expires_at <= Date.now())) {
    return refusal(401, "expired_api_key", "the API key has expired");
  }
  return null;
}

/** Why the key may not call this route; null when it may. */
function routeVerdict(key: EdgeKey, route: EdgeRoute | undefined): Refusal | null {
  if (!route || !route.enabled) return refusal(404, "no_route", "no route matches this path");
  if (!mayCall(key, route)) return refusal(403, "route_not_allowed", "this key may not call this route");
  return null;
}

/** Refused-key calls recorded one by one per client address and minute; the rest of the minute
 * is folded into one summary event, as tollgate's gateway does, so that a flood of made-up keys
 * costs a bounded number of reports. Per isolate. */
const ROWS_PER_ADDRESS_MINUTE = 10;
/** Most addresses with an open minute; past it, refused-key calls are only summarised. */
const MAX_WINDOWS = 10_000;

interface FoldWindow {
  minute: number;
  recorded: number;
  folded: number;
  method: string;
}

const windows = new Map<string, FoldWindow>();
/** The shared window of addresses past [`MAX_WINDOWS`]. */
const OVERFLOW = "\u0000overflow";

function summary(env: Env, ctx: ExecutionContext, key: string, w: FoldWindow): void {
  if (w.folded === 0) return;
  const client = key === OVERFLOW ? "" : key;
  const from = key === OVERFLOW ? "addresses past the per-address table" : client || "an unknown address";
  const ts = (w.minute + 1) * 60_000 - 1;
  report(env, ctx, {
    id: crypto.randomUUID(),
    ts,
    method: w.method,
    path: "*",
    status: 401,
    latency_ms: 0,
    client_ip: client || undefined,
    error: `invalid_api_key: summary of ${w.folded} further refused-key calls from ${from} in this minute, not recorded one by one`,
  });
}

let flushedMinute = 0;

/** Reports the summaries of minutes that have ended and forgets them (once per minute: every
 * call and the cron trigger ask). */
function flushEndedWindows(env: Env, ctx: ExecutionContext): void {
  const minute = Math.floor(Date.now() / 60_000);
  if (minute === flushedMinute) return;
  flushedMinute = minute;
  for (const [addr, w] of windows) {
    if (w.minute !== minute) {
      summary(env, ctx, addr, w);
      windows.delete(addr);
    }
  }
}

/** Whether this refused-key call gets its own report; if not, it is counted for the summary. */
function admitRefusedKey(env: Env, ctx: ExecutionContext, client: string, method: string): boolean {
  const minute = Math.floor(Date.now() / 60_000);
  flushEndedWindows(env, ctx);
  // Past the table's size, further addresses share one summary.
  const key = windows.has(client) || windows.size < MAX_WINDOWS ? client : OVERFLOW;
  let w = windows.get(key);
  if (!w) {
    w = { minute, recorded: 0, folded: 0, method };
    windows.set(key, w);
  }
  if (key !== OVERFLOW && w.recorded < ROWS_PER_ADDRESS_MINUTE) {
    w.recorded++;
    return true;
  }
  if (w.folded === 0) w.method = method;
  w.folded++;
  return false;
}

async function handle(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  const started = Date.now();
  flushEndedWindows(env, ctx);
  const url = new URL(request.url);
  const client = request.headers.get("cf-connecting-ip") ?? "";
  // The call's report, filled in as the call is decided; sent once, whatever the outcome.
  const event: UsageReport = {
    id: crypto.randomUUID(),
    ts: started,
    method: request.method,
    path: url.pathname,
    status: 0,
    latency_ms: 0,
    client_ip: client || undefined,
    user_agent: request.headers.get("user-agent") ?? undefined,
  };
  const send = (status: number, extra: Partial<UsageReport> = {}) =>
    report(env, ctx, { ...event, ...extra, status, latency_ms: Date.now() - started });
  /** An `anthropic` route matched: refusals take Anthropic's error shape from then on. */
  let anthropic = false;
  /** Refuses the call and reports the refusal (the gateway records its refusals the same way). */
  const refused = (r: Refusal): Response => {
    // A key tollgate never issued is reported like the gateway records it: without its hash
    // (it names nothing), and folded past a few calls per address and minute.
    const folded = r.code === "invalid_api_key" && !admitRefusedKey(env, ctx, client, request.method);
    if (!folded) send(r.status, { error: `${r.code}: ${r.message}` });
    return refuse(r, anthropic);
  };

  const presented = presentedKey(request.headers);
  if (!presented) {
    return refused(refusal(401, "missing_api_key", "send the API key as Authorization: Bearer <key>"));
  }
  // A typo or a made-up key never costs a look-up, at the edge or in tollgate.
  if (!wellFormed(presented)) return refused(INVALID_KEY);
  const hash = await keyHash(presented);
  const set = await current(env);
  if (!set) return refused(refusal(503, "keys_unavailable", "the key set has not been synced yet"));
  const key = set.keys.get(hash);
  // A key tollgate knows is named in the report even when it is refused (revoked, expired).
  if (key) event.key_hash = hash;
  const keyRefusal = keyVerdict(key);
  if (keyRefusal || !key) return refused(keyRefusal ?? INVALID_KEY);
  const route = set.route(url.pathname);
  // The route as the gateway records it: the matched route, even when the key may not call it.
  if (route?.enabled) {
    event.route = route.name;
    anthropic = route.kind === "anthropic";
  }
  const routeRefusal = routeVerdict(key, route);
  if (routeRefusal || !route) return refused(routeRefusal ?? refusal(404, "no_route", "no route matches this path"));

  let upstreams: Record<string, Upstream> = {};
  try {
    upstreams = JSON.parse(env.UPSTREAMS || "{}") as Record<string, Upstream>;
  } catch {
    console.error("UPSTREAMS is not JSON");
  }
  const upstream = upstreams[route.name];
  if (!upstream) {
    return refused(refusal(502, "upstream_unreachable", `no upstream is configured for route ${route.name}`));
  }

  // LLM routes: the request is read for its model, stream flag and prompt; an OpenAI stream
  // that does not ask for its usage is asked to (and the client never sees the difference).
  let info: RequestInfo | null = null;
  let body: BodyInit | null = request.body;
  if (route.kind !== "http" && request.body) {
    const bytes = await request.arrayBuffer();
    const inspected = inspectRequest(route.kind, new TextDecoder().decode(bytes));
    info = inspected.info;
    // The original bytes go upstream unless the body had to change.
    body = inspected.rewritten ?? bytes;
    const model = info.model;
    if (model !== null) event.model = model;
    if (model !== null && key.models && !key.models.some((p) => globMatch(p, model))) {
      return refused(refusal(403, "model_not_allowed", `this key may not call model ${model}`));
    }
  }

  const path = upstream.strip_prefix ? url.pathname.slice(route.prefix.length) || "/" : url.pathname;
  const target = new URL(upstream.url.replace(/\/$/, "") + path + url.search);
  const headers = new Headers(request.headers);
  for (const h of KEY_HEADERS) headers.delete(h);
  if (upstream.header && upstream.value) headers.set(upstream.header, upstream.value);
  if (info?.injectedIncludeUsage) headers.delete("content-length");

  let response: Response;
  try {
    response = await fetch(target, { method: request.method, headers, body, redirect: "manual" });
  } catch {
    return refused(refusal(502, "upstream_unreachable", "the upstream could not be reached"));
  }
  const upstreamLatency = Date.now() - started;
  if (!response.body || !info) {
    send(response.status, { upstream_latency_ms: upstreamLatency });
    return response;
  }
  // The client gets its stream as it arrives; the copy is read for usage after it ends.
  const [toClient, toRead] = response.body.tee();
  const sse = (response.headers.get("content-type") ?? "").includes("text/event-stream");
  const request_ = info;
  ctx.waitUntil(
    (async () => {
      const answer = await new Response(toRead).text();
      const upstreamLastByte = Date.now() - started;
      const estimate = env.ESTIMATE_TOKENS !== "0";
      const usage = await settle(route.kind, request_, answer, sse, response.status, estimate);
      send(response.status, {
        upstream_latency_ms: upstreamLatency,
        upstream_last_byte_ms: upstreamLastByte,
        model: usage.model ?? undefined,
        prompt_tokens: usage.tokens.prompt,
        completion_tokens: usage.tokens.completion,
        total_tokens: usage.tokens.total,
        cached_tokens: usage.tokens.cached,
        reasoning_tokens: usage.tokens.reasoning,
        estimated: usage.estimated,
      });
    })(),
  );
  const clientBody = sse && info.injectedIncludeUsage ? toClient.pipeThrough(hideInjectedUsage()) : toClient;
  const out = new Response(clientBody, response);
  if (clientBody !== toClient) out.headers.delete("content-length");
  return out;
}

export default {
  fetch: handle,
  async scheduled(_event: ScheduledController, env: Env, ctx: ExecutionContext): Promise<void> {
    flushEndedWindows(env, ctx);
    // Each on its own: a failed sync must not stop the reports' redelivery.
    ctx.waitUntil(Promise.allSettled([syncToKv(env), redeliver(env)]).then(() => undefined));
  },
} satisfies ExportedHandler<Env>;
