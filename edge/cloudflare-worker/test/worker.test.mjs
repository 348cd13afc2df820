// The Worker in workerd (through Miniflare) against the real tollgate binary and its mock
// upstream: a call is forwarded and its usage appears in tollgate under the Worker's route; a
// revoked key is refused within the sync interval; a key tollgate never issued is refused at the
// edge; a tollgate outage does not fail calls for synced keys, and their reports arrive once it
// is back (nothing lost, nothing doubled); an OpenAI stream is asked for its usage without the
// client seeing it; an answer without usage is estimated; calls are reported in batches; refused
// calls are reported with their status and code.
//
// The Worker reaches tollgate through a small proxy in this file that counts the report POSTs
// and the events in each, so that batching is seen from outside.
//
// Needs `cargo build -p tollgate -p tollgate-mock-upstream` (binaries in ../../target/debug, or
// TOLLGATE_BIN_DIR) and `npm run build`.

import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { crc32 } from "node:zlib";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Miniflare } from "miniflare";

const HERE = resolve(import.meta.dirname, "..");
// The debug binaries of the workspace: TOLLGATE_BIN_DIR, else CARGO_TARGET_DIR's (as the web
// console's e2e harness reads it), else the workspace's own target directory.
const BIN =
  process.env.TOLLGATE_BIN_DIR ??
  (process.env.CARGO_TARGET_DIR
    ? join(resolve(process.env.CARGO_TARGET_DIR), "debug")
    : resolve(HERE, "../../target/debug"));
const INGEST_SECRET = "worker-test-ingest-secret-0123456789";
const ADMIN_EMAIL = "edge-admin@example.com";
const ADMIN_PASSWORD = "a long passphrase for the worker test";

const dir = mkdtempSync(join(tmpdir(), "tollgate-worker-"));
const env = {
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("TOLLGATE_"))),
  TOLLGATE_DATA_DIR: dir,
  TOLLGATE_DATABASE_URL: `sqlite://${join(dir, "tollgate.db")}`,
  TOLLGATE_INGEST_SECRET: INGEST_SECRET,
  TOLLGATE_ADMIN_EMAIL: ADMIN_EMAIL,
  TOLLGATE_ADMIN_PASSWORD: ADMIN_PASSWORD,
  TOLLGATE_LOG_LEVEL: "warn",
  // A short feed, so that a Worker left behind it is seen to re-read the snapshot.
  TOLLGATE_RETENTION__EDGE_CHANGES: "3s",
  TOLLGATE_RETENTION__CLEANUP_INTERVAL: "1s",
};

function cli(...args) {
  const out = spawnSync(join(BIN, "tollgate"), args, { env, encoding: "utf8" });
  assert.equal(out.status, 0, `tollgate ${args.join(" ")}: ${out.stderr}`);
  return out.stdout;
}

const cliJson = (...args) => JSON.parse(cli(...args, "--json"));

/** `tollgate … --json` with `input` on standard input. */
function cliJsonInput(input, ...args) {
  const out = spawnSync(join(BIN, "tollgate"), [...args, "--json"], { env, encoding: "utf8", input });
  assert.equal(out.status, 0, `tollgate ${args.join(" ")}: ${out.stderr}`);
  return JSON.parse(out.stdout);
}

function freePort() {
  return new Promise((ok) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** A key of tollgate's format with a valid checksum that tollgate never issued. */
function strangerKey() {
  const random = Array.from({ length: 30 }, () => BASE62[Math.floor(Math.random() * 62)]).join("");
  let n = crc32(random);
  let sum = "";
  for (let i = 0; i < 6; i++) {
    sum = BASE62[n % 62] + sum;
    n = Math.floor(n / 62);
  }
  return `ntk_${random}${sum}`;
}

async function until(what, check, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

let mock;
let mockUrl;
let tollgate;
let consolePort;
let gatewayPort;
let mf;
let adminToken;
let route;
let proxyServer;
/** The report POSTs that went through the proxy: the events of each. */
const reportPosts = [];
/** Every other request that went through the proxy: "<status> <path>". */
const syncRequests = [];

/** Forwards the Worker's requests to tollgate and records each report POST's events. */
async function startProxy() {
  proxyServer = createHttpServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks);
    try {
      const headers = { ...req.headers };
      delete headers.host;
      delete headers["content-length"];
      const upstream = await fetch(`http://127.0.0.1:${consolePort}${req.url}`, {
        method: req.method,
        headers,
        body: req.method === "GET" || req.method === "HEAD" ? undefined : body,
      });
      const answer = Buffer.from(await upstream.arrayBuffer());
      if (req.method === "POST" && req.url === "/api/v1/usage/events") {
        if (upstream.ok) reportPosts.push(JSON.parse(body.toString("utf8")));
      } else {
        syncRequests.push(`${upstream.status} ${req.url}`);
      }
      res.writeHead(upstream.status, { "content-type": upstream.headers.get("content-type") ?? "application/json" });
      res.end(answer);
    } catch {
      // tollgate is down: the Worker sees a dropped connection, as it would without the proxy.
      res.destroy();
    }
  });
  await new Promise((ok) => proxyServer.listen(0, "127.0.0.1", ok));
  return proxyServer.address().port;
}

/** tollgate's log rows of a key, newest first. */
async function logsOf(keyId) {
  return (await api(`/api/v1/logs?key_id=${keyId}&limit=100`)).items;
}

/** The events of `keyHash` reported so far, each with the index of the POST that carried it. */
function reportedFor(keyHash) {
  return reportPosts.flatMap((events, post) => events.filter((e) => e.key_hash === keyHash).map((e) => ({ post, ...e })));
}

async function sha256(text) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Buffer.from(digest).toString("hex");
}

async function startTollgate() {
  tollgate = spawn(
    join(BIN, "tollgate"),
    ["serve", "--gateway-listen", `127.0.0.1:${gatewayPort}`, "--console-listen", `127.0.0.1:${consolePort}`],
    { env, stdio: ["ignore", "ignore", "inherit"] },
  );
  await until("tollgate", async () => {
    try {
      return (await fetch(`http://127.0.0.1:${consolePort}/health`)).ok;
    } catch {
      return false;
    }
  });
}

async function stopTollgate() {
  const exited = new Promise((r) => tollgate.once("exit", r));
  tollgate.kill("SIGTERM");
  await exited;
}

async function api(path) {
  const resp = await fetch(`http://127.0.0.1:${consolePort}${path}`, {
    headers: { authorization: `Bearer ${adminToken}` },
  });
  assert.equal(resp.status, 200, `${path}: ${await resp.clone().text()}`);
  return resp.json();
}

/** Calls on the route in tollgate's per-route view. */
async function routeCalls() {
  const top = await api("/api/v1/usage/top?by=route&range=24h&limit=100");
  return top.find((t) => t.id === route.id)?.calls ?? 0;
}

const HELLO = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hello" }] };

/** A chat call through the Worker; `headers` steer the mock upstream (`x-mock-*`). */
function call(key, body = HELLO, headers = {}) {
  return mf.dispatchFetch("http://edge.test/llm/v1/chat/completions", {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

/** The data of each event of an SSE body. */
function sseEvents(text) {
  return text
    .split(/\r?\n\r?\n/)
    .map((e) => e.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n"))
    .filter(Boolean);
}

before(async () => {
  mock = spawn(join(BIN, "tollgate-mock-upstream"), ["--listen", "127.0.0.1:0"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  mockUrl = await new Promise((ok) =>
    mock.stdout.on("data", (d) => {
      const m = /listening on (\S+)/.exec(String(d));
      if (m) ok(`http://${m[1]}`);
    }),
  );
  cli("migrate");
  route = cliJson("route", "add", "--name", "llm", "--prefix", "/llm", "--upstream", "http://127.0.0.1:9", "--kind", "openai");
  const edgeToken = cliJson("token", "create-edge", "--name", "worker").token;
  [consolePort, gatewayPort] = [await freePort(), await freePort()];
  // The first start creates the admin from the environment.
  await startTollgate();
  adminToken = cliJson("token", "create", "--email", ADMIN_EMAIL, "--name", "worker-test").token;
  const proxyPort = await startProxy();
  mf = new Miniflare({
    modules: true,
    scriptPath: join(HERE, "dist/index.js"),
    modulesRules: [{ type: "ESModule", include: ["**/*.js"] }],
    compatibilityDate: "2026-07-30",
    kvNamespaces: ["KEYS"],
    bindings: {
      TOLLGATE_URL: `http://127.0.0.1:${proxyPort}`,
      TOLLGATE_EDGE_TOKEN: edgeToken,
      TOLLGATE_INGEST_SECRET: INGEST_SECRET,
      SYNC_INTERVAL_SECONDS: "1",
      REPORT_BATCH_MS: "1000",
      UPSTREAMS: JSON.stringify({ llm: { url: mockUrl, strip_prefix: true, header: "authorization", value: "Bearer sk-upstream" } }),
    },
  });
});

after(async () => {
  await mf?.dispose();
  proxyServer?.close();
  tollgate?.kill("SIGTERM");
  mock?.kill("SIGTERM");
  rmSync(dir, { recursive: true, force: true });
});

test("a call is forwarded and its usage appears in tollgate under the Worker's route", async () => {
  const { key } = cliJson("key", "create", "--name", "forwarded");
  const resp = await call(key);
  assert.equal(resp.status, 200, await resp.clone().text());
  const answer = await resp.json();
  const { prompt_tokens, completion_tokens } = answer.usage;
  await until("the report", async () => (await routeCalls()) === 1);
  const summary = await api(`/api/v1/usage/summary?range=24h&route_id=${route.id}`);
  assert.equal(summary.prompt_tokens, prompt_tokens);
  assert.equal(summary.completion_tokens, completion_tokens);
  const models = await api(`/api/v1/usage/top?by=model&range=24h&route_id=${route.id}`);
  assert.equal(models[0].name, "gpt-4o-mini");
});

test("a key tollgate never issued is refused at the edge", async () => {
  // Well formed, checksum and all, but not in the synced set.
  const resp = await call(strangerKey());
  assert.equal(resp.status, 401);
  assert.equal((await resp.json()).error.code, "invalid_api_key");
  // A typo fails the checksum: refused before any look-up.
  const made = cliJson("key", "create", "--name", "typo");
  const typo = await call(made.key.slice(0, -1) + (made.key.endsWith("A") ? "B" : "A"));
  assert.equal((await typo.json()).error.code, "invalid_api_key");
  const missing = await mf.dispatchFetch("http://edge.test/llm/v1/models");
  assert.equal((await missing.json()).error.code, "missing_api_key");
});

test("a revoked key is refused within the sync interval", async () => {
  const made = cliJson("key", "create", "--name", "to-revoke");
  await sleep(1100);
  assert.equal((await call(made.key)).status, 200);
  const revokedAt = Date.now();
  cli("key", "revoke", String(made.id));
  const code = await until("the revocation at the edge", async () => {
    const resp = await call(made.key);
    return resp.status === 401 ? (await resp.json()).error.code : null;
  });
  assert.equal(code, "revoked_api_key");
  assert.ok(Date.now() - revokedAt < 3000, `took ${Date.now() - revokedAt} ms`);
});

test("a tollgate outage fails no call of a synced key, and its reports arrive once", async () => {
  const made = cliJson("key", "create", "--name", "through-outage");
  await sleep(1100);
  assert.equal((await call(made.key)).status, 200);
  // Earlier tests' calls (the third one's until its revocation arrived) are reported too: wait
  // until the count stops moving for longer than a batch waits (REPORT_BATCH_MS, 1 s here).
  let before = -1;
  await until("the reports so far", async () => {
    const n = await routeCalls();
    const steady = n === before;
    before = n;
    await sleep(1500);
    return steady && n > 0;
  });
  await stopTollgate();
  const resp = await call(made.key);
  assert.equal(resp.status, 200, "served from the synced set while tollgate is down");
  await resp.text();
  // The report's retries give up after a few seconds and leave it in KV.
  const kv = await mf.getKVNamespace("KEYS");
  await until("the report to wait in KV", async () => (await kv.list({ prefix: "pending:" })).keys.length === 1);
  await startTollgate();
  const worker = await mf.getWorker();
  await worker.scheduled({ cron: "* * * * *" });
  await until("the report after the outage", async () => (await routeCalls()) === before + 1);
  await worker.scheduled({ cron: "* * * * *" });
  await sleep(500);
  assert.equal(await routeCalls(), before + 1, "delivered once");
  assert.equal((await kv.list({ prefix: "pending:" })).keys.length, 0);
});

test("an OpenAI stream is asked for its usage: the client never sees it, tollgate gets the exact tokens", async () => {
  const made = cliJson("key", "create", "--name", "streaming");
  await sleep(1100);
  const mock = { "x-mock-prompt-tokens": "13", "x-mock-completion-tokens": "21", "x-mock-chunks": "4" };
  const resp = await call(made.key, { ...HELLO, stream: true }, mock);
  assert.equal(resp.status, 200);
  const text = await resp.text();
  const events = sseEvents(text);
  assert.equal(events.at(-1), "[DONE]", text);
  // Exactly the stream the client asked for: content chunks, no `usage` member, no usage chunk.
  assert.ok(!text.includes("usage"), text);
  const chunks = events.slice(0, -1).map((d) => JSON.parse(d));
  assert.ok(chunks.length >= 4 && chunks.every((c) => c.choices.length > 0), text);
  // A client that asks for the usage itself gets it, untouched.
  const asked = await call(made.key, { ...HELLO, stream: true, stream_options: { include_usage: true } }, mock);
  const askedEvents = sseEvents(await asked.text()).slice(0, -1).map((d) => JSON.parse(d));
  assert.deepEqual(askedEvents.at(-1).choices, []);
  assert.equal(askedEvents.at(-1).usage.completion_tokens, 21);
  const rows = await until("both reports", async () => {
    const items = await logsOf(made.id);
    return items.length === 2 ? items : null;
  });
  for (const row of rows) {
    assert.equal(row.route_id, route.id);
    assert.deepEqual([row.prompt_tokens, row.completion_tokens, row.estimated], [13, 21, false], JSON.stringify(row));
    // The stream's end is reported too: the upstream's last byte, not before its first.
    assert.ok(typeof row.upstream_last_byte_ms === "number", JSON.stringify(row));
    assert.ok(row.upstream_last_byte_ms >= row.upstream_latency_ms, JSON.stringify(row));
  }
});

test("an answer without usage is estimated with the model's vocabulary and marked estimated", async () => {
  const made = cliJson("key", "create", "--name", "no-usage");
  await sleep(1100);
  const reply = "Counting tokens at the edge, the same way tollgate's gateway counts them.";
  const prompt = "Estimate me, please: how many tokens is this prompt?";
  const body = { model: "gpt-4o-mini", messages: [{ role: "user", content: prompt }] };
  const headers = { "x-mock-no-usage": "1", "x-mock-text": reply };
  const json = await call(made.key, body, headers);
  assert.equal(json.status, 200);
  assert.equal((await json.json()).usage, undefined, "the mock reported no usage");
  const stream = await call(made.key, { ...body, stream: true }, headers);
  await stream.text();
  // tollgate's own tokenizer (`tollgate estimate`, what its gateway falls back to) is the reference.
  const count = (text) => cliJsonInput(text, "estimate", "--model", "gpt-4o-mini").tokens;
  const [promptTokens, replyTokens] = [count(prompt), count(reply)];
  assert.ok(promptTokens > 5 && replyTokens > 10);
  const rows = await until("both reports", async () => {
    const items = await logsOf(made.id);
    return items.length === 2 ? items : null;
  });
  for (const row of rows) {
    assert.deepEqual(
      [row.prompt_tokens, row.completion_tokens, row.estimated],
      [promptTokens, replyTokens, true],
      JSON.stringify(row),
    );
  }
});

test("calls are reported in batches: several calls, one signed POST", async () => {
  const made = cliJson("key", "create", "--name", "batched");
  // Earlier reports leave the queue (REPORT_BATCH_MS is 1000 here).
  await sleep(1500);
  const answers = await Promise.all(Array.from({ length: 6 }, () => call(made.key)));
  for (const a of answers) {
    assert.equal(a.status, 200);
    await a.text();
  }
  const hash = await sha256(made.key);
  const reported = await until("the batch", async () => {
    const events = reportedFor(hash);
    return events.length === 6 ? events : null;
  });
  assert.equal(new Set(reported.map((e) => e.post)).size, 1, "one POST carried the six calls");
  assert.equal(new Set(reported.map((e) => e.id)).size, 6, "each call has its own id");
  await until("the six calls in tollgate", async () => (await logsOf(made.id)).length === 6);
});

test("refused calls are reported with their status and code, as the gateway records them", async () => {
  const narrow = cliJson("key", "create", "--name", "narrow", "--routes", "llm", "--models", "gpt-4o*");
  const other = cliJson("route", "add", "--name", "other", "--prefix", "/other", "--upstream", "http://127.0.0.1:9");
  const revoked = cliJson("key", "create", "--name", "refused-revoked");
  cli("key", "revoke", String(revoked.id));
  await sleep(1100);
  const model = await call(narrow.key, { ...HELLO, model: "o3" });
  assert.equal(model.status, 403);
  assert.equal((await model.json()).error.code, "model_not_allowed");
  const notAllowed = await mf.dispatchFetch("http://edge.test/other/x", { headers: { authorization: `Bearer ${narrow.key}` } });
  assert.equal(notAllowed.status, 403);
  assert.equal((await notAllowed.json()).error.code, "route_not_allowed");
  const noRoute = await mf.dispatchFetch("http://edge.test/nowhere", { headers: { authorization: `Bearer ${narrow.key}` } });
  assert.equal(noRoute.status, 404);
  assert.equal((await noRoute.json()).error.code, "no_route");
  const gone = await call(revoked.key);
  assert.equal(gone.status, 401);
  assert.deepEqual((await gone.json()).error, {
    code: "revoked_api_key",
    message: "the API key was revoked",
    type: "authentication_error",
  });
  // On an Anthropic route, refusals take Anthropic's error shape, as the gateway's do.
  cli("route", "add", "--name", "claude", "--prefix", "/claude", "--upstream", "http://127.0.0.1:9", "--kind", "anthropic");
  await sleep(1100);
  const claude = await mf.dispatchFetch("http://edge.test/claude/v1/messages", {
    method: "POST",
    headers: { "x-api-key": narrow.key, "content-type": "application/json" },
    body: JSON.stringify({ model: "claude-sonnet-4", max_tokens: 5, messages: [{ role: "user", content: "hi" }] }),
  });
  assert.equal(claude.status, 403);
  const claudeError = await claude.json();
  assert.equal(claudeError.type, "error");
  assert.deepEqual([claudeError.error.type, claudeError.error.code], ["permission_error", "route_not_allowed"]);
  const rows = await until("the refusals", async () => {
    const items = await logsOf(narrow.id);
    return items.length === 4 ? items : null;
  });
  const byCode = Object.fromEntries(rows.filter((r) => r.path !== "/claude/v1/messages").map((r) => [r.error.split(":")[0], r]));
  assert.equal(byCode.model_not_allowed.status, 403);
  assert.equal(byCode.model_not_allowed.model, "o3");
  assert.equal(byCode.model_not_allowed.route_id, route.id);
  assert.equal(byCode.route_not_allowed.status, 403);
  assert.equal(byCode.route_not_allowed.route_id, other.id);
  assert.equal(byCode.no_route.status, 404);
  const [revokedRow] = await until("the revoked key's refusal", async () => {
    const items = await logsOf(revoked.id);
    return items.length === 1 ? items : null;
  });
  assert.equal(revokedRow.status, 401);
  assert.match(revokedRow.error, /^revoked_api_key/);
  // A key tollgate never issued: refused at the edge at once, reported afterwards without a hash.
  const stranger = strangerKey();
  const before = reportPosts.length;
  const refused = await mf.dispatchFetch("http://edge.test/llm/v1/stranger", {
    headers: { authorization: `Bearer ${stranger}` },
  });
  assert.equal(refused.status, 401);
  assert.equal(reportPosts.length, before, "no report before the answer");
  const invalid = await until("the invalid key's report", async () =>
    reportPosts.flat().find((e) => e.path === "/llm/v1/stranger"),
  );
  assert.equal(invalid.status, 401);
  assert.equal(invalid.key_hash, undefined);
  assert.match(invalid.error, /^invalid_api_key/);
});

test("a Worker left behind the pruned change feed re-reads the snapshot", async () => {
  const staying = cliJson("key", "create", "--name", "staying");
  const leaving = cliJson("key", "create", "--name", "leaving");
  await sleep(1100);
  assert.equal((await call(staying.key)).status, 200);
  assert.equal((await call(leaving.key)).status, 200);
  // No call for longer than the feed keeps a change (3 s here): the revocation and the new key
  // are pruned from the feed before this Worker polls again.
  cli("key", "revoke", String(leaving.id));
  const fresh = cliJson("key", "create", "--name", "fresh");
  await sleep(5500);
  const seen = syncRequests.length;
  const resp = await call(fresh.key);
  assert.equal(resp.status, 200, await resp.clone().text());
  const asked = syncRequests.slice(seen);
  assert.ok(asked.some((r) => r.startsWith("410 /api/v1/edge/changes")), asked.join(", "));
  assert.ok(asked.includes("200 /api/v1/edge/snapshot"), asked.join(", "));
  const gone = await call(leaving.key);
  assert.equal((await gone.json()).error.code, "revoked_api_key");
});

test("made-up keys from one address: ten reports a minute, then one summary", async () => {
  const stranger = () =>
    mf.dispatchFetch("http://edge.test/llm/v1/fold", {
      headers: { authorization: `Bearer ${strangerKey()}`, "cf-connecting-ip": "203.0.113.50" },
    });
  // All twelve calls in one minute: wait for the next one if this one is nearly over.
  const left = 60_000 - (Date.now() % 60_000);
  if (left < 10_000) await sleep(left + 100);
  for (let i = 0; i < 12; i++) assert.equal((await stranger()).status, 401);
  const fromThere = () => reportPosts.flat().filter((e) => e.client_ip === "203.0.113.50");
  await until("the ten reports", async () => fromThere().length === 10);
  assert.ok(fromThere().every((e) => e.path === "/llm/v1/fold" && e.key_hash === undefined));
  // When the minute has ended, the next call (any call) sends the summary of the other two.
  await sleep(60_000 - (Date.now() % 60_000) + 100);
  assert.equal((await stranger()).status, 401);
  const summary = await until("the summary", async () => fromThere().find((e) => e.path === "*"));
  assert.equal(summary.status, 401);
  assert.match(summary.error, /^invalid_api_key: summary of 2 further refused-key calls from 203\.0\.113\.50/);
  assert.equal(fromThere().length, 12, "ten, the summary, and the first call of the new minute");
});
