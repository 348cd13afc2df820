// Reports calls to tollgate's ingest API (`POST /api/v1/usage/events`), batched across the calls
// an isolate serves: each event is queued with its own id, and the queue is sent when it holds
// `REPORT_BATCH_SIZE` events (100 by default) or its oldest event is `REPORT_BATCH_MS` old (2000
// by default), from `ctx.waitUntil`, so the client's response is never delayed. Every attempt is
// signed afresh with the ingest secret (HMAC-SHA256 over "<unix seconds>.<body>"); a batch is
// retried with back-off and the same ids (tollgate stores a repeated id once), and one that still
// fails waits in KV for the cron trigger: nothing lost, nothing doubled.

export interface UsageReport {
  id: string;
  ts: number;
  key_hash?: string;
  route?: string;
  method: string;
  path: string;
  status: number;
  latency_ms: number;
  upstream_latency_ms?: number;
  /** Until the upstream's answer ended (LLM routes, whose answer the Worker reads to its end). */
  upstream_last_byte_ms?: number;
  client_ip?: string;
  user_agent?: string;
  model?: string;
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
  cached_tokens?: number;
  reasoning_tokens?: number;
  estimated?: boolean;
  error?: string;
}

export interface ReportEnv {
  KEYS: KVNamespace;
  TOLLGATE_URL: string;
  TOLLGATE_INGEST_SECRET: string;
  REPORT_BATCH_SIZE?: string;
  REPORT_BATCH_MS?: string;
}

const PENDING = "pending:";

async function sign(secret: string, body: string): Promise<Record<string, string>> {
  const ts = Math.floor(Date.now() / 1000).toString();
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${ts}.${body}`));
  const hex = [...new Uint8Array(mac)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return { "x-tollgate-timestamp": ts, "x-tollgate-signature": `sha256=${hex}` };
}

/** Sends one batch; true when tollgate took it (or refused it for good: a retry would not help). */
async function send(env: ReportEnv, events: UsageReport[]): Promise<boolean> {
  const body = JSON.stringify(events);
  try {
    const resp = await fetch(new URL("/api/v1/usage/events", env.TOLLGATE_URL), {
      method: "POST",
      headers: { "content-type": "application/json", ...(await sign(env.TOLLGATE_INGEST_SECRET, body)) },
      body,
      signal: AbortSignal.timeout(5000),
    });
    const text = await resp.text();
    if (resp.status === 422) console.error("tollgate refused a report batch", text);
    return resp.ok || resp.status === 422;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Delivers `events`: a few tries with back-off and jitter, then into KV for the cron trigger. */
export async function deliver(env: ReportEnv, events: UsageReport[]): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    if (await send(env, events)) return;
    await sleep(200 * 2 ** attempt * (0.5 + Math.random()));
  }
  await env.KEYS.put(`${PENDING}${crypto.randomUUID()}`, JSON.stringify(events), {
    // Older reports would be refused by tollgate's retention anyway.
    expirationTtl: 7 * 24 * 3600,
  });
}

/** Sends the batches waiting in KV (the cron trigger); each is deleted once tollgate has it. */
export async function redeliver(env: ReportEnv): Promise<number> {
  let sent = 0;
  const list = await env.KEYS.list({ prefix: PENDING });
  for (const { name } of list.keys) {
    const events = await env.KEYS.get<UsageReport[]>(name, "json");
    if (!events || (await send(env, events))) {
      await env.KEYS.delete(name);
      sent += events?.length ?? 0;
    }
  }
  return sent;
}

function setting(text: string | undefined, fallback: number, max: number): number {
  const n = Number(text);
  return Number.isInteger(n) && n > 0 ? Math.min(n, max) : fallback;
}

/** Events waiting to be sent, shared by the calls this isolate serves, with when each was queued. */
const queue: { event: UsageReport; at: number }[] = [];

/** Sends what is queued, in batches of at most `size`. */
async function flush(env: ReportEnv, size: number): Promise<void> {
  while (queue.length > 0) {
    await deliver(
      env,
      queue.splice(0, size).map((q) => q.event),
    );
  }
}

/** Queues one call's report; the queue goes out through `ctx.waitUntil` when it is full or its
 * oldest event is old enough. Nothing here waits: the caller has already answered (or is
 * answering) the client. Each call waits in its own `waitUntil` (a promise of one request is
 * never awaited by another, which workerd does not allow), and the wait that finds the oldest
 * event due sends the whole queue. */
export function report(env: ReportEnv, ctx: ExecutionContext, event: UsageReport): void {
  // At most tollgate's batch limit (10,000).
  const size = setting(env.REPORT_BATCH_SIZE, 100, 10_000);
  // At most 20 s: `waitUntil` keeps an isolate only about 30 s after its response.
  const age = setting(env.REPORT_BATCH_MS, 2000, 20_000);
  queue.push({ event, at: Date.now() });
  if (queue.length >= size) {
    ctx.waitUntil(flush(env, size));
    return;
  }
  ctx.waitUntil(
    sleep(age).then(async () => {
      const oldest = queue[0];
      // Timers may fire a little early; a few ms are forgiven.
      if (oldest && Date.now() - oldest.at >= age - 20) await flush(env, size);
    }),
  );
}
