// Limits and alerts end to end, in real Chromium against the real binary: a key's limit set in
// the console holds at the gateway, the Limits page shows it full, and an alert channel added in
// the console receives signed deliveries that the Alerts page lists. Needs a binary with
// /api/v1/limits; an older one skips these tests (saying so).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { AxeBuilder } from '@axe-core/playwright';
import { apiSession, eventually, launchBrowser, newPage, screenshot, startServer } from './harness.mjs';

let server;
let browser;
let admin;
let receiver;
/** Why the tests cannot run here (a binary without the limits API), or null. */
let missing = null;

/** An HTTP receiver on loopback that keeps every request and answers 200. */
function startReceiver() {
  const requests = [];
  const http = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      requests.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  return new Promise((resolve) =>
    http.listen(0, '127.0.0.1', () =>
      resolve({ url: `http://127.0.0.1:${http.address().port}/hook`, requests, close: () => http.close() }),
    ),
  );
}

/** Whether a delivery carries `X-Tollgate-Signature: sha256=<HMAC(secret, "<timestamp>.<body>")>`. */
function signedWith(secret, request) {
  const timestamp = request.headers['x-tollgate-timestamp'];
  const expected = `sha256=${createHmac('sha256', secret).update(`${timestamp}.${request.body}`).digest('hex')}`;
  return typeof timestamp === 'string' && request.headers['x-tollgate-signature'] === expected;
}

async function callGateway(key) {
  return fetch(`${server.gateway}/mock/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello from the limits test' }] }),
  });
}

before(async () => {
  // Webhooks may reach loopback only when the operator lists it (the receiver runs there).
  process.env.TOLLGATE_UPSTREAM_ALLOWLIST = '["127.0.0.1"]';
  server = await startServer({ events: 200, days: 1 });
  admin = await apiSession(server.base);
  try {
    await admin.get('/api/v1/limits');
  } catch (e) {
    missing = `this binary has no /api/v1/limits (${String(e).slice(0, 120)}); build one with the governance server parts`;
    return;
  }
  browser = await launchBrowser();
  receiver = await startReceiver();
});

after(async () => {
  receiver?.close();
  await browser?.close();
  await server?.stop();
});

describe('limits and alerts', () => {
  const name = `e2e-limited-${Date.now()}`;
  const channelName = `e2e-receiver-${Date.now()}`;
  let secret;

  test('add a channel in the console: its signing secret is shown once', async (t) => {
    if (missing) return t.skip(missing);
    const page = await newPage(browser, server.base, { session: admin });
    await page.goto('/alerts');
    await page.getByRole('button', { name: 'Add channel' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add alert channel' });
    await dialog.getByLabel('Name', { exact: true }).fill(channelName);
    await dialog.getByLabel('Webhook URL').fill(receiver.url);
    await dialog.getByRole('button', { name: 'Create' }).click();
    const box = dialog.getByLabel('Signing secret');
    await box.waitFor();
    secret = (await box.textContent()).trim();
    assert.ok(secret.length >= 32, 'a secret of some length');
    await dialog.getByRole('button', { name: 'Copy' }).click();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
    await dialog.getByRole('button', { name: 'Done' }).click();
    await page.getByRole('cell', { name: channelName, exact: true }).waitFor();
    assert.equal(await page.getByText(secret).count(), 0, 'the secret is gone once the dialog closes');
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  test('a key limited to 2 requests a minute in the console: the third call is refused, the page shows 100 %', async (t) => {
    if (missing) return t.skip(missing);
    const created = await admin.post('/api/v1/keys', { name });
    // A soft budget of one token a day on the same key: the calls cross it, which alerts.
    await admin.post('/api/v1/limits', {
      scope: { type: 'key', id: created.id },
      kind: { type: 'token_budget', max: 1, period: 'day' },
      enforcement: 'soft',
      alert_at: [100],
    });

    const page = await newPage(browser, server.base, { session: admin });
    await page.goto('/limits');
    await page.getByRole('button', { name: 'Add limit' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add limit' });
    await dialog.getByLabel('Applies to').selectOption('key');
    await dialog.getByLabel('Key', { exact: true }).selectOption(String(created.id));
    await dialog.getByLabel('Kind').selectOption('requests');
    await dialog.getByLabel('Window').selectOption('minute');
    await dialog.getByLabel('Maximum', { exact: true }).fill('2');
    await dialog.getByRole('button', { name: 'Create' }).click();
    await dialog.waitFor({ state: 'detached' });
    const gauge = page.getByRole('meter', { name: `Use of 2 requests / minute on Key ${name}` });
    await gauge.waitFor();

    // Three calls within one minute (a fixed window must not roll over between them).
    if (Date.now() % 60_000 > 50_000) await new Promise((r) => setTimeout(r, 60_000 - (Date.now() % 60_000) + 200));
    const statuses = [];
    let refused;
    for (let i = 0; i < 3; i++) {
      const r = await callGateway(created.key);
      statuses.push(r.status);
      if (r.status === 429) refused = { retryAfter: r.headers.get('retry-after'), body: await r.json() };
      else await r.arrayBuffer();
    }
    assert.deepEqual(statuses, [200, 200, 429]);
    assert.equal(refused.body.error.code, 'rate_limited');
    assert.ok(Number(refused.retryAfter) >= 1, `Retry-After: ${refused.retryAfter}`);

    await eventually(
      async () => {
        await page.reload();
        await gauge.waitFor({ timeout: 3_000 });
        return Number(await gauge.getAttribute('aria-valuenow')) === 100;
      },
      10_000,
      'the gauge at 100 %',
    );
    assert.equal((await gauge.locator('.limits-percent').textContent()).trim(), '100%');
    assert.equal(await gauge.locator('.limit-bar.danger').count(), 1, 'a full limit is red');
    // The key page shows the same limit.
    await page.goto('/keys');
    await page.getByRole('row').filter({ hasText: name }).getByRole('link', { name: /2 requests \/ minute · 100%/ }).waitFor();
    assert.deepEqual(page.errors, []);
    await screenshot(page, 'limits-key-full');
    await page.goto('/limits');
    await gauge.waitFor();
    await screenshot(page, 'limits-page');
    await page.context().close();
  });

  test('the budget crossing reaches the receiver, signed, and the Alerts page lists it; so does a test', async (t) => {
    if (missing) return t.skip(missing);
    await eventually(() => receiver.requests.length > 0, 30_000, 'a delivery at the receiver');
    for (const request of receiver.requests) assert.ok(signedWith(secret, request), 'every delivery is signed with the secret');

    const page = await newPage(browser, server.base, { session: admin });
    await page.goto('/alerts');
    const deliveries = page.locator('table.alerts-deliveries');
    const delivered = deliveries.getByRole('row').filter({ hasText: channelName }).filter({ hasText: 'Delivered' });
    // The list refreshes by itself.
    await delivered.first().waitFor({ timeout: 15_000 });
    assert.equal((await delivered.first().getByText('200', { exact: true }).count()) > 0, true, 'the HTTP status is shown');

    const before = receiver.requests.length;
    await page.getByRole('button', { name: `Send a test to ${channelName}` }).click();
    await page.getByText(`Test delivered to ${channelName}`).waitFor();
    await eventually(() => receiver.requests.length > before, 5_000, 'the test at the receiver');
    assert.ok(signedWith(secret, receiver.requests.at(-1)), 'the test is signed too');
    await eventually(async () => (await delivered.count()) >= 2, 15_000, 'the test in the delivery list');
    assert.deepEqual(page.errors, []);
    await screenshot(page, 'alerts-deliveries');
    await page.context().close();
  });

  test('both pages pass the accessibility check in both themes and fit a phone', async (t) => {
    if (missing) return t.skip(missing);
    const problems = [];
    for (const colorScheme of ['light', 'dark']) {
      const page = await newPage(browser, server.base, { colorScheme, session: admin });
      for (const path of ['/limits', '/alerts']) {
        await page.goto(path);
        await page.getByRole('heading', { level: 1 }).waitFor();
        await page.getByRole('table').first().waitFor();
        const result = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa']).analyze();
        for (const v of result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')) {
          problems.push(`${colorScheme} ${path}: ${v.id} (${v.nodes.length}) at ${v.nodes[0].target.join(' ')}`);
        }
      }
      await page.context().close();
    }
    assert.deepEqual(problems, []);
    const phone = await newPage(browser, server.base, { width: 375, session: admin });
    const wide = [];
    for (const path of ['/limits', '/alerts']) {
      await phone.goto(path);
      await phone.getByRole('table').first().waitFor();
      const width = await phone.evaluate(() => document.documentElement.scrollWidth);
      if (width > 375) wide.push(`${path}: ${width} px`);
    }
    await phone.context().close();
    assert.deepEqual(wide, []);
  });

  test('in Chinese: the Limits page and its nav entry are translated', async (t) => {
    if (missing) return t.skip(missing);
    for (const [locale, title, nav] of [
      ['zh-CN', '限额', '告警'],
      ['zh-TW', '限額', '警示'],
    ]) {
      const page = await newPage(browser, server.base, { locale, session: admin });
      await page.goto('/limits');
      await page.getByRole('heading', { level: 1, name: title }).waitFor();
      await page.getByRole('navigation').getByRole('link', { name: nav }).waitFor();
      assert.deepEqual(page.errors, []);
      await page.context().close();
    }
  });
});
