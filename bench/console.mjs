// Console render benchmark: how long pages of the web console take to be ready in Chromium with a
// large store behind them (10 M events from `tollgate demo`), measured in the browser.
//
//   node bench/console.mjs --data-dir DIR [--bin target/release/tollgate] [--runs 7]
//
// It starts `tollgate serve` on DIR (first admin from the environment variables below), signs in,
// and for each page loads it `runs` times (the first load with a cold HTTP cache, the rest warm),
// timing from navigation start until the page's data requests have all answered and the page shows
// no loading indicator. Prints a table and writes bench/results/console-<time>.json.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { chromium } = createRequire(join(root, 'web', 'package.json'))('playwright-core');

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const dataDir = opt('--data-dir');
const bin = resolve(opt('--bin', join(root, 'target', 'release', 'tollgate')));
const runs = Number(opt('--runs', '7'));
if (!dataDir || !existsSync(bin)) {
  console.error('usage: node bench/console.mjs --data-dir DIR [--bin PATH] [--runs N]');
  process.exit(2);
}
const email = 'bench-admin@example.com';
const password = 'bench admin passphrase, long enough';
const ready = join(dataDir, 'console-bench-ready.json');
rmSync(ready, { force: true });
const server = spawn(
  bin,
  ['--data-dir', dataDir, 'serve', '--gateway-listen', '127.0.0.1:0', '--console-listen', '127.0.0.1:0', '--ready-file', ready],
  {
    env: { ...process.env, TOLLGATE_ADMIN_EMAIL: email, TOLLGATE_ADMIN_PASSWORD: password, TOLLGATE_LOG_LEVEL: 'warn', TOLLGATE_RETENTION__DAYS: '400', TOLLGATE_RETENTION__ROLLUP_DAYS: '400' },
    stdio: ['ignore', 'ignore', 'inherit'],
  },
);
let addrs;
for (let i = 0; i < 600 && !addrs; i++) {
  if (existsSync(ready) && readFileSync(ready, 'utf8').trim()) addrs = JSON.parse(readFileSync(ready, 'utf8'));
  else await sleep(100);
}
if (!addrs) throw new Error('tollgate serve did not start');
const base = `http://${addrs.console}`;

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const context = await browser.newContext({ baseURL: base, viewport: { width: 1440, height: 900 } });
const login = await context.request.post('/api/v1/auth/login', { data: { email, password } });
if (!login.ok()) throw new Error(`sign-in failed: ${login.status()}`);
const page = await context.newPage();

const pages = ['/', '/analytics?range=24h', '/analytics?range=7d', '/analytics?range=30d', '/analytics?range=90d', '/logs'];
const results = [];
for (const path of pages) {
  const times = [];
  for (let r = 0; r < runs; r++) {
    const start = Date.now();
    await page.goto(path, { waitUntil: 'networkidle' });
    await page.waitForFunction(() => !document.querySelector('[role="status"] .spinner, .spinner'), null, { timeout: 30_000 });
    const ms = await page.evaluate(() => {
      const api = performance.getEntriesByType('resource').filter((e) => e.name.includes('/api/'));
      const last = api.reduce((m, e) => Math.max(m, e.responseEnd), 0);
      return Math.max(last, performance.getEntriesByType('navigation')[0]?.domContentLoadedEventEnd ?? 0);
    });
    times.push({ ready_ms: Math.round(ms), wall_ms: Date.now() - start });
  }
  const warm = times.slice(1).map((t) => t.ready_ms).sort((a, b) => a - b);
  const median = warm[Math.floor(warm.length / 2)] ?? times[0].ready_ms;
  results.push({ path, cold_ms: times[0].ready_ms, warm_median_ms: median, warm_max_ms: warm.at(-1) ?? median, runs: times });
  console.log(`${path.padEnd(24)} cold ${String(times[0].ready_ms).padStart(5)} ms   warm median ${String(median).padStart(5)} ms   warm max ${String(warm.at(-1) ?? median).padStart(5)} ms`);
}
await page.screenshot({ path: join(root, 'bench', 'results', 'console-analytics.png'), fullPage: true }).catch(() => {});
await browser.close();
server.kill('SIGTERM');
mkdirSync(join(root, 'bench', 'results'), { recursive: true });
const out = join(root, 'bench', 'results', `console-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), base, results }, null, 2));
console.log(`written ${out}`);
