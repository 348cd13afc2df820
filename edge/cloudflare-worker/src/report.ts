// Reports every call to tollgate's ingest API (`POST /api/v1/usage/events`), signed with the
// ingest secret (HMAC-SHA256 over "<unix seconds>.<body>"), each event with its own id so that a
// retry is stored once. Sent from `ctx.waitUntil`, never delaying the client; retried with
// back-off; a batch that still fails waits in KV for the cron trigger to deliver it.

export interface UsageReport {
  id: string;
  ts: number;
  key_hash: string;
  route: string;
  method: string;
  path: string;
  status: number;
  latency_ms: number;
  client_ip?: string;
  user_agent?: string;
  model?: string;
  prompt_tokens?: number;
  completion_tokens?: number;
  error?: string;
}

export interface ReportEnv {
  KEYS: KVNamespace;
  TOLLGATE_URL: string;
  TOLLGATE_INGEST_SECRET: string;
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
    if (resp.status === 422) console.error("tollgate refused a report batch", await resp.text());
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
