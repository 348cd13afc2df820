// The Worker in workerd (through Miniflare) against the real tollgate binary and its mock
// upstream: a call is forwarded and its usage appears in tollgate under the Worker's route; a
// revoked key is refused within the sync interval; a key tollgate never issued is refused at the
// edge; a tollgate outage does not fail calls for synced keys, and their reports arrive once it
// is back (nothing lost, nothing doubled).
//
// Needs `cargo build -p tollgate -p tollgate-mock-upstream` (binaries in ../../target/debug, or
// TOLLGATE_BIN_DIR) and `npm run build`.

import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { crc32 } from "node:zlib";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Miniflare } from "miniflare";

const HERE = resolve(import.meta.dirname, "..");
const BIN = process.env.TOLLGATE_BIN_DIR ?? resolve(HERE, "../../target/debug");
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
};

function cli(...args) {
  const out = spawnSync(join(BIN, "tollgate"), args, { env, encoding: "utf8" });
  assert.equal(out.status, 0, `tollgate ${args.join(" ")}: ${out.stderr}`);
  return out.stdout;
}

const cliJson = (...args) => JSON.parse(cli(...args, "--json"));

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

function call(key, body = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hello" }] }) {
  return mf.dispatchFetch("http://edge.test/llm/v1/chat/completions", {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
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
  mf = new Miniflare({
    modules: true,
    scriptPath: join(HERE, "dist/index.js"),
    modulesRules: [{ type: "ESModule", include: ["**/*.js"] }],
    compatibilityDate: "2026-07-30",
    kvNamespaces: ["KEYS"],
    bindings: {
      TOLLGATE_URL: `http://127.0.0.1:${consolePort}`,
      TOLLGATE_EDGE_TOKEN: edgeToken,
      TOLLGATE_INGEST_SECRET: INGEST_SECRET,
      SYNC_INTERVAL_SECONDS: "1",
      UPSTREAMS: JSON.stringify({ llm: { url: mockUrl, strip_prefix: true, header: "authorization", value: "Bearer sk-upstream" } }),
    },
  });
});

after(async () => {
  await mf?.dispose();
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
  // until the count stops moving.
  let before = -1;
  await until("the reports so far", async () => {
    const n = await routeCalls();
    const steady = n === before;
    before = n;
    await sleep(700);
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
