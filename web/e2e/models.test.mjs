// The models page end to end, in real Chromium against the real binary: an instance admin adds
// a target (pointing at the mock upstream) and a model in the UI, a call goes through an llm
// route, and the target's health on the page shows the attempt.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { apiSession, eventually, launchBrowser, newPage, screenshot, startServer } from './harness.mjs';

let server;
let browser;
let admin;

before(async () => {
  server = await startServer({ events: 50, days: 1 });
  browser = await launchBrowser();
  admin = await apiSession(server.base);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

describe('models', () => {
  test('add a target and a model in the UI, call them through an llm route, see the health', async () => {
    const page = await newPage(browser, server.base, { session: admin });
    await page.goto('/models');
    await page.getByRole('heading', { name: 'Models', level: 1 }).waitFor();

    // A target at the mock upstream, with a credential that is never shown again.
    await page.getByRole('button', { name: 'Add target' }).click();
    const targetDialog = page.getByRole('dialog', { name: 'Add target' });
    await targetDialog.getByLabel('Name', { exact: true }).fill('mock-1');
    await targetDialog.getByLabel('Provider').selectOption('openai_compatible');
    await targetDialog.getByLabel('Base URL').fill(`http://${server.upstream}/v1`);
    await targetDialog.getByLabel('Credential', { exact: true }).fill('sk-e2e-never-shown');
    await targetDialog.getByLabel('Requests per minute ceiling').fill('60');
    await targetDialog.getByRole('button', { name: /^create/i }).click();
    await targetDialog.waitFor({ state: 'detached' });
    const targetRow = page.locator('tr[data-target="mock-1"]');
    await targetRow.waitFor();
    assert.match(await targetRow.textContent(), /authorization: Bearer \{key\}/);
    assert.doesNotMatch(await page.content(), /sk-e2e-never-shown/);

    // A model served by it, with an alias.
    await page.getByRole('button', { name: 'Add model' }).click();
    const modelDialog = page.getByRole('dialog', { name: 'Add model' });
    await modelDialog.getByLabel('Model name').fill('gpt-4o-mini');
    await modelDialog.getByLabel('Pool').fill('mock-1');
    await modelDialog.getByLabel('Aliases').fill('fast');
    await modelDialog.getByRole('button', { name: /^create/i }).click();
    await modelDialog.waitFor({ state: 'detached' });
    const modelRow = page.locator('tr[data-model="gpt-4o-mini"]');
    await modelRow.waitFor();
    assert.match(await modelRow.textContent(), /fast/);
    assert.match(await modelRow.textContent(), /mock-1/);

    // An llm route and a key, then a call by the alias through the gateway.
    await admin.post('/api/v1/routes', { name: 'llm', prefix: '/llm', kind: 'llm', upstream_url: 'http://127.0.0.1:9' });
    const key = (await admin.post('/api/v1/keys', { name: 'e2e-models' })).key;
    await eventually(
      async () => {
        const r = await fetch(`${server.gateway}/llm/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'fast', messages: [{ role: 'user', content: 'hello' }] }),
        });
        return r.status === 200;
      },
      15_000,
      'the gateway to load the route and the model',
    );

    // The page reads the target's health again by itself: one attempt, no errors, closed.
    await eventually(
      async () => /[1-9]\d* attempts, 0 errors/.test(await targetRow.locator('.target-recent').textContent()),
      15_000,
      'the attempt in the target health',
    );
    assert.equal((await targetRow.locator('.target-circuit .badge').textContent()).trim(), 'closed');
    assert.match(await targetRow.locator('.target-rate').textContent(), /\/ 60/);
    assert.deepEqual(page.errors, []);
    await screenshot(page, 'models');
  });

  test('prices: the built-in table with its date, a console price set and removed in the UI', async () => {
    const page = await newPage(browser, server.base, { session: admin });
    await page.goto('/models');
    await page.getByRole('heading', { name: 'Prices', level: 2 }).waitFor();
    // The heading comes before the table's data: read the section once a row is there.
    const builtIn = page.locator('tr[data-price="gpt-4o"]');
    await builtIn.waitFor();
    assert.match(await page.locator('section[aria-labelledby="prices-heading"]').textContent(), /taken on \d{4}-\d{2}-\d{2}/);
    assert.match(await builtIn.textContent(), /built-in/);

    // A bad price is refused in the form, naming the field; nothing is sent.
    await page.getByRole('button', { name: 'Set a price' }).click();
    const dialog = page.getByRole('dialog', { name: 'Set a price' });
    await dialog.getByLabel('Model or prefix').fill('e2e-model');
    await dialog.getByLabel('Input', { exact: true }).fill('-1');
    await dialog.getByLabel('Output', { exact: true }).fill('4');
    await dialog.getByRole('button', { name: /^save/i }).click();
    await dialog.getByText('A price is a number from 0 to 100000').waitFor();
    await dialog.getByLabel('Input', { exact: true }).fill('1.5');
    await dialog.getByRole('button', { name: /^save/i }).click();
    await dialog.waitFor({ state: 'detached' });
    const row = page.locator('tr[data-price="e2e-model"]');
    await row.waitFor();
    assert.match(await row.textContent(), /\$1\.5/);
    assert.match(await row.textContent(), /console/);

    // Removing the console price takes the row away.
    await row.getByRole('button', { name: /Remove the console price/ }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
    await row.waitFor({ state: 'detached' });
    assert.deepEqual(page.errors, []);
  });
});
