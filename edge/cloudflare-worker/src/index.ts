// tollgate's edge companion (seed 000): validates the key against the set synced from tollgate,
// matches the route by longest prefix, forwards with streaming and the upstream credential from
// Worker secrets, and reports every call to tollgate with `ctx.waitUntil` — never delaying or
// failing the client's response. Refusals take tollgate's JSON error shape and codes.

import { keyHash, presentedKey, wellFormed } from "./key.js";
import { current, syncToKv, type EdgeKey, type EdgeRoute, type SyncEnv } from "./keyset.js";
import { deliver, redeliver, type ReportEnv, type UsageReport } from "./report.js";
import { usageOf } from "./usage.js";

export interface Env extends SyncEnv, ReportEnv {
  /** JSON by route name: {"url", "strip_prefix"?, "header"?, "value"?}. */
  UPSTREAMS: string;
}

interface Upstream {
  url: string;
  strip_prefix?: boolean;
  header?: string;
  value?: string;
}

const KEY_HEADERS = ["authorization", "x-api-key", "api-key"];

function refuse(status: number, code: string, message: string): Response {
  return Response.json({ error: { code, message } }, { status });
}

function globMatch(pattern: string, text: string): boolean {
  const re = new RegExp(`^${pattern.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`);
  return re.test(text);
}

function mayCall(key: EdgeKey, route: EdgeRoute): boolean {
  return key.routes ? key.routes.includes(route.id) : route.team_id === null || route.team_id === key.team_id;
}

/** Why the key may not make this call, as tollgate's gateway would answer; null when it may. */
function verdict(key: EdgeKey | undefined, route: EdgeRoute | undefined): Response | null {
  if (!key) return refuse(401, "invalid_api_key", "the API key is not valid");
  if (key.status === "revoked") return refuse(401, "revoked_api_key", "the API key was revoked");
  if (key.status === "expired" || (key.expires_at !== null && key.expires_at <= Date.now())) {
    return refuse(401, "expired_api_key", "the API key has expired");
  }
  if (!route || !route.enabled) return refuse(404, "no_route", "no route matches this path");
  if (!mayCall(key, route)) return refuse(403, "route_not_allowed", "this key may not call this route");
  return null;
}

async function handle(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  const started = Date.now();
  const url = new URL(request.url);
  const presented = presentedKey(request.headers);
  if (!presented) return refuse(401, "missing_api_key", "send the API key as Authorization: Bearer <key>");
  // A typo or a made-up key never costs a look-up, at the edge or in tollgate.
  if (!wellFormed(presented)) return refuse(401, "invalid_api_key", "the API key is not valid");
  const hash = await keyHash(presented);
  const set = await current(env);
  if (!set) return refuse(503, "keys_unavailable", "the key set has not been synced yet");
  const key = set.keys.get(hash);
  const route = set.route(url.pathname);
  const refusal = verdict(key, route);
  if (refusal || !key || !route) return refusal ?? refuse(401, "invalid_api_key", "the API key is not valid");

  let upstreams: Record<string, Upstream> = {};
  try {
    upstreams = JSON.parse(env.UPSTREAMS || "{}") as Record<string, Upstream>;
  } catch {
    console.error("UPSTREAMS is not JSON");
  }
  const upstream = upstreams[route.name];
  if (!upstream) return refuse(502, "upstream_unreachable", `no upstream is configured for route ${route.name}`);

  // The model, for LLM routes: read from a copy, the original body goes upstream untouched.
  let requestModel: string | null = null;
  let body: BodyInit | null = request.body;
  if (route.kind !== "http" && request.body) {
    const bytes = await request.arrayBuffer();
    body = bytes;
    try {
      const parsed = JSON.parse(new TextDecoder().decode(bytes)) as { model?: unknown };
      if (typeof parsed.model === "string") requestModel = parsed.model;
    } catch {
      // Not JSON: forwarded as it is.
    }
    if (requestModel && key.models && !key.models.some((p) => globMatch(p, requestModel ?? ""))) {
      return refuse(403, "model_not_allowed", `this key may not call model ${requestModel}`);
    }
  }

  const path = upstream.strip_prefix ? url.pathname.slice(route.prefix.length) || "/" : url.pathname;
  const target = new URL(upstream.url.replace(/\/$/, "") + path + url.search);
  const headers = new Headers(request.headers);
  for (const h of KEY_HEADERS) headers.delete(h);
  if (upstream.header && upstream.value) headers.set(upstream.header, upstream.value);

  const report = (status: number, extra: Partial<UsageReport>) =>
    ({
      id: crypto.randomUUID(),
      ts: started,
      key_hash: hash,
      route: route.name,
      method: request.method,
      path: url.pathname,
      status,
      latency_ms: Date.now() - started,
      client_ip: request.headers.get("cf-connecting-ip") ?? undefined,
      user_agent: request.headers.get("user-agent") ?? undefined,
      ...extra,
    }) satisfies UsageReport;

  let response: Response;
  try {
    response = await fetch(target, { method: request.method, headers, body, redirect: "manual" });
  } catch (e) {
    ctx.waitUntil(deliver(env, [report(502, { error: String(e) })]));
    return refuse(502, "upstream_unreachable", "the upstream could not be reached");
  }
  if (!response.body || route.kind === "http") {
    ctx.waitUntil(deliver(env, [report(response.status, { model: requestModel ?? undefined })]));
    return response;
  }
  // The client gets its stream as it arrives; the copy is read for usage afterwards.
  const [toClient, toRead] = response.body.tee();
  const contentType = response.headers.get("content-type") ?? "";
  ctx.waitUntil(
    (async () => {
      const text = await new Response(toRead).text();
      const usage = usageOf(text, contentType, requestModel);
      await deliver(env, [
        report(response.status, {
          model: usage.model ?? undefined,
          prompt_tokens: usage.prompt,
          completion_tokens: usage.completion,
        }),
      ]);
    })(),
  );
  return new Response(toClient, response);
}

export default {
  fetch: handle,
  async scheduled(_event: ScheduledController, env: Env, ctx: ExecutionContext): Promise<void> {
    // Each on its own: a failed sync must not stop the reports' redelivery.
    ctx.waitUntil(Promise.allSettled([syncToKv(env), redeliver(env)]).then(() => undefined));
  },
} satisfies ExportedHandler<Env>;
