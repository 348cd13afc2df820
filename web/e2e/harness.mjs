// End-to-end harness: the real tollgate binary (with the UI built in) on loopback, a mock
// upstream, demo data, and Debian's Chromium driven by playwright-core.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const targetDir = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(root, 'target');
export const BIN = process.env.TOLLGATE_BIN ?? join(targetDir, 'debug', 'tollgate');
export const MOCK_BIN = process.env.TOLLGATE_MOCK_BIN ?? join(targetDir, 'debug', 'tollgate-mock-upstream');
export const OUT = resolve(here, '..', 'test-results', 'e2e');
export const ADMIN = { email: 'admin@example.com', password: 'correct horse battery staple e2e' };
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

function need(path, hint) {
  if (!existsSync(path)) throw new Error(`${path} is missing: ${hint}`);
}

/** Waits until `check` returns a truthy value, or fails after `ms`. */
export async function eventually(check, ms = 10_000, what = 'condition') {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ''}`);
}

/**
 * Starts a mock upstream and `tollgate serve` with demo data and a route `/mock` to the upstream,
 * with `env` added to the environment.
 * Returns { console, gateway, dir, stop() }.
 */
export async function startServer({ events = 5000, days = 7, env: extraEnv = {} } = {}) {
  need(BIN, 'build it with `cargo build -p tollgate` after `npm run build` in web/');
  need(MOCK_BIN, 'build it with `cargo build -p tollgate-mock-upstream`');
  need(CHROMIUM, 'install Debian chromium (apt-get install chromium)');
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-e2e-'));
  const data = join(dir, 'data');
  const env = {
    ...process.env,
    TOLLGATE_ADMIN_EMAIL: ADMIN.email,
    TOLLGATE_ADMIN_PASSWORD: ADMIN.password,
    TOLLGATE_LOG_LEVEL: 'warn',
    TOLLGATE_MASTER_KEY: 'a'.repeat(64),
    ...extraEnv,
  };
  const children = [];
  const mock = spawn(MOCK_BIN, ['--listen', '127.0.0.1:0', '--threads', '1'], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(mock);
  let mockOut = '';
  mock.stdout.on('data', (d) => (mockOut += d));
  const upstream = await eventually(() => /listening on (\S+)/.exec(mockOut)?.[1], 10_000, 'the mock upstream');

  const cli = (...args) => execFileSync(BIN, ['--data-dir', data, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  cli('migrate'); // only `serve` and `migrate` create a store
  cli('demo', '--events', String(events), '--days', String(days));
  cli('route', 'add', '--name', 'mock', '--prefix', '/mock', '--upstream', `http://${upstream}`, '--kind', 'openai', '--strip-prefix');

  const ready = join(dir, 'ready.json');
  const server = spawn(
    BIN,
    ['--data-dir', data, 'serve', '--gateway-listen', '127.0.0.1:0', '--console-listen', '127.0.0.1:0', '--ready-file', ready],
    { env, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  children.push(server);
  let serverErr = '';
  server.stderr.on('data', (d) => (serverErr += d));
  const addrs = await eventually(
    () => {
      if (server.exitCode !== null) throw new Error(`tollgate serve exited: ${serverErr}`);
      return existsSync(ready) && readFileSync(ready, 'utf8').trim() ? JSON.parse(readFileSync(ready, 'utf8')) : null;
    },
    30_000,
    'tollgate serve',
  );
  const base = `http://${addrs.console}`;
  const gateway = `http://${addrs.gateway}`;
  const page = await fetch(`${base}/`).then((r) => r.text());
  if (!page.includes('<div id="root">')) {
    throw new Error('the binary serves no built console: run `npm run build` in web/ and rebuild tollgate');
  }
  return {
    base,
    gateway,
    dir,
    upstream,
    cli,
    async stop() {
      for (const c of children.reverse()) c.kill('SIGTERM');
      await sleep(200);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A signed-in API session for fixtures (cookie + CSRF), talking to the console like the browser. */
export async function apiSession(base, { email, password } = ADMIN) {
  const login = await fetch(`${base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  if (!login.ok) throw new Error(`sign-in failed: ${login.status} ${await login.text()}`);
  const cookie = login.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const me = await fetch(`${base}/api/v1/auth/me`, { headers: { cookie } }).then((r) => r.json());
  const call = async (method, path, body) => {
    const r = await fetch(`${base}${path}`, {
      method,
      headers: { cookie, 'x-csrf-token': me.csrf_token, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  return { me, cookie, get: (p) => call('GET', p), post: (p, b) => call('POST', p, b ?? {}), put: (p, b) => call('PUT', p, b), del: (p) => call('DELETE', p) };
}

/** Chromium with the flags this machine needs. */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** A fresh browser context and page; browser errors are collected on `page.errors`. */
export async function newPage(browser, base, { locale = 'en-US', colorScheme = 'light', width = 1280, session } = {}) {
  const context = await browser.newContext({ baseURL: base, locale, colorScheme, viewport: { width, height: 900 } });
  if (session) {
    // An existing session (see apiSession): the sign-in throttle allows few sign-ins a minute.
    const [name, ...rest] = session.cookie.split('=');
    await context.addCookies([{ name, value: rest.join('='), url: base }]);
  }
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  return page;
}

/** Signs in through the sign-in form. */
export async function signIn(page, { email, password } = ADMIN) {
  await page.goto('/sign-in');
  await page.getByLabel(/e-mail|邮箱|電子郵件/i).fill(email);
  await page.getByLabel(/password|密码|密碼/i).fill(password);
  await page.getByRole('button', { name: /sign in|登录|登入/i }).click();
  await page.waitForURL((url) => !url.pathname.startsWith('/sign-in'));
}

/** Saves the page's final state as a screenshot under test-results/e2e/. */
export async function screenshot(page, name) {
  mkdirSync(OUT, { recursive: true });
  await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });
}
