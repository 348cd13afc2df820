// Development aid: sign in and screenshot a console page in Debian's Chromium.
// node scripts/shot.mjs <base-url> <path> <out.png> [--dark] [--lang zh-CN] [--width 375]
// Credentials: TOLLGATE_ADMIN_EMAIL / TOLLGATE_ADMIN_PASSWORD (defaults match the dev server notes).
import { chromium } from 'playwright-core';

const [base, path, out, ...rest] = process.argv.slice(2);
if (!base || !path || !out) {
  console.error('usage: node scripts/shot.mjs <base-url> <path> <out.png> [--dark] [--lang L] [--width W]');
  process.exit(2);
}
const flag = (name) => {
  const i = rest.indexOf(name);
  return i >= 0 ? rest[i + 1] : undefined;
};
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const context = await browser.newContext({
  viewport: { width: Number(flag('--width') ?? 1280), height: 900 },
  colorScheme: rest.includes('--dark') ? 'dark' : 'light',
  locale: flag('--lang') ?? 'en-US',
});
const page = await context.newPage();
const errors = [];
page.on('pageerror', (e) => errors.push(String(e)));
page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
const email = process.env.TOLLGATE_ADMIN_EMAIL ?? 'admin@example.com';
const password = process.env.TOLLGATE_ADMIN_PASSWORD ?? 'correct horse battery staple';
await page.request.post(`${base}/api/v1/auth/login`, { data: { email, password } });
await page.goto(`${base}${path}`);
await page.waitForLoadState('networkidle');
await page.waitForTimeout(500);
await page.screenshot({ path: out, fullPage: true });
if (errors.length) console.log('browser errors:\n' + errors.join('\n'));
await browser.close();
