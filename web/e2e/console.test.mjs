// The console end to end, in real Chromium against the real binary with demo data.
// Every test ends by saving a screenshot of its final state under test-results/e2e/.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { AxeBuilder } from '@axe-core/playwright';
import { apiSession, eventually, launchBrowser, newPage, screenshot, signIn, startServer } from './harness.mjs';

let server;
let browser;
let admin;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  admin = await apiSession(server.base);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function callGateway(key) {
  return fetch(`${server.gateway}/mock/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'user-agent': 'e2e-client/1.0' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello from the e2e test' }] }),
  });
}

describe('console', () => {
  test('sign in, create a key, copy it, call the gateway, see the call, revoke it', async () => {
    const page = await newPage(browser, server.base);
    await signIn(page);
    const name = `e2e-key-${Date.now()}`;

    await page.goto('/keys');
    await page.getByRole('button', { name: 'Create key' }).click();
    const dialog = page.getByRole('dialog', { name: 'Create API key' });
    await dialog.getByLabel(/^name/i).fill(name);
    await dialog.getByRole('button', { name: /^create/i }).click();
    const secretBox = dialog.getByLabel('New API key');
    await secretBox.waitFor();
    const secret = (await secretBox.textContent()).trim();
    assert.match(secret, /^ntk_[0-9A-Za-z]{36}$/);
    await dialog.getByRole('button', { name: 'Copy' }).click();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    assert.equal(copied, secret, 'the clipboard holds the key');

    const ok = await callGateway(copied);
    assert.equal(ok.status, 200, await ok.text());

    // The call appears in the logs (the writer flushes within a second or so).
    await eventually(async () => {
      await page.goto('/logs');
      const row = page.getByRole('table').getByRole('row').filter({ hasText: name });
      await row.first().waitFor({ timeout: 2_000 });
      return (await row.filter({ hasText: '/mock/v1/chat/completions' }).count()) > 0;
    }, 15_000, 'the call in the call log');
    // Its detail: the model and the tokens the mock answered with.
    await page.getByRole('table').getByRole('row').filter({ hasText: name }).first().click();
    const details = page.getByRole('dialog', { name: 'Call details' });
    await details.getByText('gpt-4o-mini').first().waitFor();
    // And in analytics, under top keys.
    // And in analytics: filtered to this key, it is the one top key, with its one call.
    const keyId = (await admin.get('/api/v1/keys')).find((k) => k.name === name).id;
    await page.goto(`/analytics?range=24h&key_id=${keyId}`);
    const topKeys = page.getByRole('region', { name: 'Top keys' });
    await topKeys.getByRole('button', { name, exact: true }).waitFor({ timeout: 15_000 });
    await page.getByRole('group', { name: 'Totals' }).getByText('Calls', { exact: true }).waitFor();

    // Revoke it in the UI: the gateway refuses it.
    await page.goto('/keys');
    await page.getByRole('button', { name: `Revoke ${name}` }).click();
    await page.getByRole('dialog').getByRole('button', { name: /revoke/i }).click();
    await eventually(async () => (await callGateway(secret)).status === 401, 5_000, 'the gateway to refuse the revoked key');
    const refused = await (await callGateway(secret)).json();
    assert.equal(refused.error.code, 'revoked_api_key');
    await page.getByRole('row').filter({ hasText: name }).getByText(/revoked/i).first().waitFor();
    assert.deepEqual(page.errors, []);
    await screenshot(page, 'keys-create-call-revoke');
    await page.context().close();
  });

  test('record a counter reading of 35万 and see the gauge move', async () => {
    // A first reading from a tool (through the API), so the gauge starts at 10 %.
    await admin.post('/api/v1/counters/default/readings', { reading: '100K', event: 'morning', sync_type: 'api' });
    const page = await newPage(browser, server.base, { session: admin });
    await page.goto('/counters?counter=default');
    const gauge = page.getByRole('meter').first();
    await gauge.waitFor();
    await eventually(async () => Number(await gauge.getAttribute('aria-valuenow')) === 10, 5_000, 'the gauge at 10 %');
    const before = 10;
    await page.getByRole('button', { name: 'Record reading' }).click();
    const dialog = page.getByRole('dialog', { name: 'Record a reading' });
    await dialog.getByLabel('Reading').fill('35万');
    await dialog.getByText(/350,000/).first().waitFor(); // live parsing feedback
    await dialog.getByRole('button', { name: 'Record', exact: true }).click();
    await eventually(async () => Number(await gauge.getAttribute('aria-valuenow')) !== before, 5_000, 'the gauge to move');
    const status = await admin.get('/api/v1/counters/default');
    assert.equal(status.used, 350000);
    assert.equal(Number(await gauge.getAttribute('aria-valuenow')), Math.round((350000 / status.quota) * 100));
    assert.deepEqual(page.errors, []);
    await screenshot(page, 'counter-35wan');
    await page.context().close();
  });

  test('filter the audit log and download its CSV', async () => {
    const page = await newPage(browser, server.base, { session: admin });
    await page.goto('/audit');
    await page.getByLabel('Action').selectOption('login');
    await page.getByRole('row').nth(1).waitFor();
    const rows = await page.getByRole('row').count();
    assert.ok(rows >= 2, 'at least one sign-in is listed');
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Download CSV' }).click(),
    ]);
    const csv = readFileSync(await download.path(), 'utf8');
    const lines = csv.trim().split('\n');
    assert.ok(lines.length >= 2, csv);
    assert.ok(lines.slice(1).every((l) => l.includes('login')), 'only sign-ins in the filtered CSV');
    assert.deepEqual(page.errors, []);
    await screenshot(page, 'audit-filter-csv');
    await page.context().close();
  });

  test('switch to dark mode and to Chinese', async () => {
    const page = await newPage(browser, server.base, { session: admin });
    await page.goto('/analytics');
    await page.getByLabel('Theme').selectOption('dark');
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.equal(bg, 'rgb(15, 20, 26)');
    await page.getByLabel('Language').selectOption('zh-CN');
    await page.getByRole('link', { name: '用量分析' }).waitFor();
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'zh-CN');
    // Remembered across a reload.
    await page.reload();
    await page.getByRole('link', { name: 'API 密钥' }).waitFor();
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
    assert.deepEqual(page.errors, []);
    await screenshot(page, 'dark-chinese');
    await page.context().close();
  });

  test('a viewer cannot see the create-key button', async () => {
    const email = `viewer-${Date.now()}@example.com`;
    const password = 'a viewer passphrase that is long enough';
    const team = admin.me.memberships[0].team_id;
    const invitation = await admin.post(`/api/v1/teams/${team}/invitations`, { email, role: 'viewer' });
    const token = invitation.link.split('/').pop();
    await fetch(`${server.base}/api/v1/invitations/${token}/accept`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ password, display_name: 'Viewer' }),
    }).then(async (r) => assert.ok(r.ok, await r.text()));

    const page = await newPage(browser, server.base);
    await signIn(page, { email, password });
    await page.goto('/keys');
    await page.getByRole('heading', { level: 1 }).waitFor();
    await page.getByRole('table').or(page.getByText(/nothing here|no keys/i)).first().waitFor();
    assert.equal(await page.getByRole('button', { name: 'Create key' }).count(), 0);
    assert.equal(await page.getByRole('link', { name: 'Users' }).count(), 0, 'no admin pages offered');
    assert.deepEqual(page.errors, []);
    await screenshot(page, 'viewer-keys');
    await page.context().close();
  });

  test('the first load transfers at most 300 KB of compressed JavaScript', async () => {
    // A fresh context (empty cache), signed in, opening the overview as a user would.
    const page = await newPage(browser, server.base, { session: admin });
    const sizes = [];
    page.on('requestfinished', (request) => {
      if (request.url().endsWith('.js')) sizes.push(request.sizes().then((s) => s.responseBodySize));
    });
    await page.goto('/');
    await page.waitForLoadState('networkidle');
    const js = (await Promise.all(sizes)).reduce((a, b) => a + b, 0);
    assert.ok(sizes.length > 0, 'some JavaScript was loaded');
    assert.ok(js <= 300 * 1024, `first load transferred ${js} bytes of JavaScript`);
    console.log(`first load: ${sizes.length} scripts, ${js} bytes compressed`);
    await screenshot(page, 'first-load-overview');
    await page.context().close();
  });

  test('every page passes an automated accessibility check in both themes', async () => {
    const pages = ['/', '/analytics', '/logs', '/keys', '/routes', '/teams', '/teams/1', '/users', '/audit',
      '/system', '/counters', '/settings', '/tokens', '/account', '/api-docs'];
    const problems = [];
    for (const colorScheme of ['light', 'dark']) {
      const page = await newPage(browser, server.base, { colorScheme, session: admin });
      for (const path of pages) {
        await page.goto(path);
        await page.waitForLoadState('networkidle');
        const result = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa']).analyze();
        for (const v of result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')) {
          problems.push(`${colorScheme} ${path}: ${v.id} (${v.nodes.length}) at ${v.nodes[0].target.join(' ')}`);
        }
      }
      if (colorScheme === 'dark') await screenshot(page, 'a11y-dark-api-docs');
      await page.context().close();
    }
    assert.deepEqual(problems, []);
  });

  test('every page fits a 375 px wide phone screen', async () => {
    const page = await newPage(browser, server.base, { width: 375, session: admin });
    const wide = [];
    for (const path of ['/', '/analytics', '/logs', '/keys', '/routes', '/teams', '/teams/1', '/users', '/audit',
      '/system', '/counters', '/settings', '/tokens', '/account', '/api-docs']) {
      await page.goto(path);
      await page.waitForLoadState('networkidle');
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      if (width > 375) wide.push(`${path}: ${width} px`);
    }
    await screenshot(page, 'phone-api-docs');
    await page.context().close();
    assert.deepEqual(wide, [], 'no page scrolls sideways (wide tables scroll inside their box)');
  });

  test('the sign-in and invitation pages pass it too, and focus is visible', async () => {
    const page = await newPage(browser, server.base);
    await page.goto('/sign-in');
    await page.getByLabel(/e-mail/i).waitFor();
    let result = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa']).analyze();
    assert.deepEqual(result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id), []);
    // Keyboard only: Tab reaches the e-mail field and shows a focus ring.
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    const outline = await page.evaluate(() => {
      const el = document.activeElement;
      return el && el !== document.body ? getComputedStyle(el).outlineStyle : 'none';
    });
    assert.notEqual(outline, 'none', 'the focused control shows an outline');
    await page.goto('/invite/not-a-real-token');
    await page.getByRole('heading', { level: 1 }).waitFor();
    result = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa']).analyze();
    assert.deepEqual(result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id), []);
    await screenshot(page, 'invitation-unknown');
    await page.context().close();
  });
});
