import { afterEach, expect, test, vi } from 'vitest';
import { cleanup, render, screen, within } from '@testing-library/react';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { MemoryRouter } from 'react-router';
import { client } from '../api/client';
import type { LimitView } from '../api/vocabulary';
import { LimitBadges } from './LimitBadges';

function limitOf(id: number, extra: Partial<LimitView>): LimitView {
  return {
    id,
    scope: { type: 'team', id: 1 },
    scope_name: 'acme',
    kind: { type: 'requests', per: 'minute', max: 60 },
    enforcement: 'hard',
    alert_at: [80, 100],
    include_reported: false,
    created_by: 'user:root@example.com',
    created_at: 0,
    usage: null,
    ...extra,
  };
}

afterEach(() => {
  cleanup();
  vi.restoreAllMocks();
});

function renderBadges(...scopes: Parameters<typeof LimitBadges>[0]['scope'][]) {
  const queries = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={queries}>
      <MemoryRouter>
        {scopes.map((scope, i) => (
          <div key={i} data-testid={`scope-${i}`}>
            <LimitBadges scope={scope} />
          </div>
        ))}
      </MemoryRouter>
    </QueryClientProvider>,
  );
}

test('the limits of one scope, coloured at their thresholds, linking to the Limits page; one request for all', async () => {
  const get = vi.spyOn(client, 'GET').mockImplementation((() =>
    Promise.resolve({
      data: {
        limits: [
          limitOf(1, { usage: { used: 51, reserved: 0, max: 60, remaining: 9, percent: 85, reset_at: null, period_start: null } }),
          limitOf(2, {
            kind: { type: 'cost_budget', max_micro_usd: 5_000_000, period: 'month' },
            enforcement: 'soft',
            usage: { used: 1_000_000, reserved: 0, max: 5_000_000, remaining: 4_000_000, percent: 20, reset_at: null, period_start: null },
          }),
          limitOf(3, { scope: { type: 'team', id: 2 }, scope_name: 'globex' }),
        ],
      },
      error: undefined,
      response: new Response(null, { status: 200 }),
    })) as never);
  renderBadges({ type: 'team', id: 1 }, { type: 'team', id: 2 });
  const list = await within(screen.getByTestId('scope-0')).findByRole('list', { name: 'Limits' });
  const links = within(list).getAllByRole('link');
  expect(links.map((l) => l.textContent)).toEqual(['60 requests / minute · 85%', '$5.00 / month · 20%']);
  expect(links[0].className).toContain('warning');
  expect(links[1].className).toContain('info');
  expect(links[0].getAttribute('href')).toBe('/limits?scope=team&id=1');
  expect(links[1].getAttribute('title')).toBe('$5.00 / month · 20% used · Soft');
  expect(within(screen.getByTestId('scope-1')).getAllByRole('link').map((l) => l.textContent)).toEqual([
    '60 requests / minute',
  ]);
  expect(get).toHaveBeenCalledTimes(1);
});

test('no limits on the scope: "None"', async () => {
  vi.spyOn(client, 'GET').mockImplementation((() =>
    Promise.resolve({ data: { limits: [] }, error: undefined, response: new Response(null, { status: 200 }) })) as never);
  renderBadges({ type: 'key', id: 9 });
  expect(await screen.findByText('None')).toBeTruthy();
});
