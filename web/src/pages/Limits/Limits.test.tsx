import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { MemoryRouter } from 'react-router';
import type { ReactNode } from 'react';
import { ApiError, client, type Schemas } from '../../api/client';
import type { LimitView } from '../../api/vocabulary';
import { permissionsOf, type Session } from '../../auth';
import { ToastProvider } from '../../components/ui';

let session: Session;
vi.mock('../../auth', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../auth')>();
  return {
    ...real,
    useAuth: () => ({ session, signIn: vi.fn(), signOut: vi.fn(), refresh: vi.fn() }),
    usePermissions: () => real.permissionsOf(session),
  };
});

import LimitsPage from '.';
import {
  createBody,
  creatableScopes,
  fieldOf,
  formOf,
  kindOf,
  limitsOn,
  mayManageLimit,
  microUsd,
  parseThresholds,
  sortLimits,
  toneOf,
  updateBody,
  validateLimit,
  type LimitForm,
} from './model';

const NOW = new Date(2026, 11, 6, 12, 0).getTime();

function sessionOf(isAdmin: boolean, memberships: [number, string, string][]): Session {
  return {
    csrf_token: 'x',
    user: { id: 7, email: 'me@example.com', display_name: 'Me', is_admin: isAdmin, created_at: 0, has_password: true },
    memberships: memberships.map(([team_id, team_name, role]) => ({
      team_id,
      team_name,
      role,
      user_id: 7,
      email: 'me@example.com',
      display_name: 'Me',
      joined_at: 0,
    })),
  } as Session;
}

function limitOf(id: number, extra: Partial<LimitView> = {}): LimitView {
  return {
    id,
    scope: { type: 'key', id: 5 },
    scope_name: 'n8n prod',
    kind: { type: 'requests', per: 'minute', max: 2 },
    enforcement: 'hard',
    alert_at: [80, 100],
    include_reported: false,
    created_by: 'user:me@example.com',
    created_at: NOW,
    usage: { used: 2, reserved: 0, max: 2, remaining: 0, percent: 100, reset_at: NOW + 30_000, period_start: null },
    ...extra,
  };
}

const key: Schemas['KeyView'] = {
  id: 5,
  team_id: 1,
  team: 'acme',
  name: 'n8n prod',
  description: '',
  prefix: 'ntk_Ab…wxyz',
  status: 'active',
  created_by: null,
  created_at: 0,
  expires_at: null,
  revoked_at: null,
  last_used_at: null,
  last_used: 'never used',
  route_ids: null,
  revealable: false,
  models: null,
};

function ok<T>(data: T, status = 200) {
  return Promise.resolve({ data, error: undefined, response: new Response(null, { status }) }) as never;
}
function failure(status: number, code: string, message: string, field?: string) {
  return Promise.resolve({
    data: undefined,
    error: { error: { code, message, field } },
    response: new Response(null, { status }),
  }) as never;
}

function wrap(children: ReactNode, path = '/limits') {
  const queries = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return (
    <QueryClientProvider client={queries}>
      <ToastProvider>
        <MemoryRouter initialEntries={[path]}>{children}</MemoryRouter>
      </ToastProvider>
    </QueryClientProvider>
  );
}

afterEach(() => {
  cleanup();
  vi.restoreAllMocks();
});

function form(extra: Partial<LimitForm> = {}): LimitForm {
  return { ...formOf(null), scopeType: 'key', scopeId: '5', max: '2', ...extra };
}

describe('the limit form', () => {
  test('each kind becomes the API shape, with the fields it has', () => {
    expect(kindOf(form({ kindType: 'requests', per: 'second', max: '10' }))).toEqual({ type: 'requests', per: 'second', max: 10 });
    expect(kindOf(form({ kindType: 'tokens_per_minute', max: '5000' }))).toEqual({ type: 'tokens_per_minute', max: 5000 });
    expect(kindOf(form({ kindType: 'concurrency', max: '4' }))).toEqual({ type: 'concurrency', max: 4 });
    expect(kindOf(form({ kindType: 'token_budget', max: '1000000', period: 'week' }))).toEqual({
      type: 'token_budget',
      max: 1_000_000,
      period: 'week',
    });
    expect(kindOf(form({ kindType: 'cost_budget', max: '12.5', period: 'month' }))).toEqual({
      type: 'cost_budget',
      max_micro_usd: 12_500_000,
      period: 'month',
    });
  });

  test('bodies: scope only on create; include_reported only for budgets; thresholds sorted', () => {
    const f = form({ alertAt: '100, 50,80', includeReported: true });
    expect(createBody(f)).toEqual({
      scope: { type: 'key', id: 5 },
      kind: { type: 'requests', per: 'minute', max: 2 },
      enforcement: 'hard',
      alert_at: [50, 80, 100],
      include_reported: false,
    });
    const budget = form({ kindType: 'token_budget', period: 'total', enforcement: 'soft', includeReported: true, alertAt: '' });
    expect(updateBody(budget)).toEqual({
      kind: { type: 'token_budget', max: 2, period: 'total' },
      enforcement: 'soft',
      alert_at: [],
      include_reported: true,
    });
    expect(createBody(form({ scopeType: 'instance', scopeId: '' })).scope).toEqual({ type: 'instance' });
  });

  test('zero, negative, fractional or missing maxima, bad thresholds and no target are refused at the field', () => {
    for (const max of ['0', '-1', '1.5', '', 'ten', '9007199254740993']) {
      expect(validateLimit(form({ max })).max, max).toBe('bad_max');
    }
    for (const max of ['0', '-2', 'abc', '1.1234567', '']) {
      expect(validateLimit(form({ kindType: 'cost_budget', max })).max, max).toBe('bad_usd');
    }
    expect(validateLimit(form({ alertAt: '80, 0' })).alertAt).toBe('bad_thresholds');
    expect(validateLimit(form({ alertAt: '80%' })).alertAt).toBe('bad_thresholds');
    expect(validateLimit(form({ scopeId: '' })).scopeId).toBe('pick_scope');
    expect(validateLimit(form({ scopeType: 'instance', scopeId: '' }))).toEqual({});
    expect(validateLimit(form())).toEqual({});
  });

  test('thresholds and dollars parse exactly', () => {
    expect(parseThresholds('80，100 50 80')).toEqual([50, 80, 100]);
    expect(parseThresholds('')).toEqual([]);
    expect(parseThresholds('1001')).toBeNull();
    expect(microUsd('0.000001')).toBe(1);
    expect(microUsd('5')).toBe(5_000_000);
    expect(microUsd('0')).toBeNull();
  });

  test('editing starts from the limit: dollars back from micro-USD, its thresholds', () => {
    const f = formOf(limitOf(1, { kind: { type: 'cost_budget', max_micro_usd: 2_500_000, period: 'day' }, alert_at: [50] }));
    expect(f).toMatchObject({ kindType: 'cost_budget', max: '2.5', period: 'day', alertAt: '50', scopeType: 'key', scopeId: '5' });
  });

  test('server fields map to the form', () => {
    expect(fieldOf(new ApiError(422, 'invalid', 'm', 'kind.max'))).toBe('max');
    expect(fieldOf(new ApiError(422, 'invalid', 'm', 'max_micro_usd'))).toBe('max');
    expect(fieldOf(new ApiError(422, 'invalid', 'm', 'alert_at'))).toBe('alertAt');
    expect(fieldOf(new ApiError(422, 'invalid', 'm', 'kind.period'))).toBe('period');
    expect(fieldOf(new ApiError(403, 'forbidden', 'm', 'scope.id'))).toBe('scopeId');
    expect(fieldOf(new Error('x'))).toBeNull();
  });
});

describe('gauges, order and permissions', () => {
  test('the gauge turns amber at the first threshold and red at the last (or 100 %)', () => {
    expect(toneOf(50, [80, 100])).toBe('');
    expect(toneOf(80, [80, 100])).toBe('warning');
    expect(toneOf(100, [80, 100])).toBe('danger');
    expect(toneOf(60, [50, 60])).toBe('danger');
    expect(toneOf(100, [150])).toBe('danger');
    expect(toneOf(85, [])).toBe('warning');
    expect(toneOf(null, [80])).toBe('');
  });

  test('instance first, then teams, routes and keys', () => {
    const list = [
      limitOf(1),
      limitOf(2, { scope: { type: 'instance' }, scope_name: 'instance' }),
      limitOf(3, { scope: { type: 'route', id: 1 }, scope_name: 'openai' }),
      limitOf(4, { scope: { type: 'team', id: 1 }, scope_name: 'acme' }),
    ];
    expect(sortLimits(list).map((l) => l.id)).toEqual([2, 4, 3, 1]);
    expect(limitsOn(list, { type: 'key', id: 5 }).map((l) => l.id)).toEqual([1]);
    expect(limitsOn(list, { type: 'team', id: 2 })).toEqual([]);
  });

  test('instance admins manage every limit; team admins their team and its keys; viewers none', () => {
    const admin = permissionsOf(sessionOf(true, []));
    expect(creatableScopes(admin)).toEqual(['instance', 'team', 'key', 'route']);
    expect(mayManageLimit(admin, { type: 'instance' }, () => undefined)).toBe(true);
    const teamAdmin = permissionsOf(sessionOf(false, [[1, 'acme', 'admin']]));
    expect(creatableScopes(teamAdmin)).toEqual(['team', 'key']);
    expect(mayManageLimit(teamAdmin, { type: 'team', id: 1 }, () => undefined)).toBe(true);
    expect(mayManageLimit(teamAdmin, { type: 'key', id: 5 }, () => 1)).toBe(true);
    expect(mayManageLimit(teamAdmin, { type: 'key', id: 6 }, () => 2)).toBe(false);
    expect(mayManageLimit(teamAdmin, { type: 'instance' }, () => undefined)).toBe(false);
    expect(mayManageLimit(teamAdmin, { type: 'route', id: 1 }, () => undefined)).toBe(false);
    const viewer = permissionsOf(sessionOf(false, [[1, 'acme', 'viewer']]));
    expect(creatableScopes(viewer)).toEqual([]);
    expect(mayManageLimit(viewer, { type: 'team', id: 1 }, () => undefined)).toBe(false);
  });
});

describe('the limits page', () => {
  let limits: LimitView[];
  beforeEach(() => {
    limits = [
      limitOf(1),
      limitOf(2, {
        scope: { type: 'instance' },
        scope_name: 'instance',
        kind: { type: 'token_budget', max: 1000, period: 'month' },
        enforcement: 'soft',
        usage: { used: 400, reserved: 50, max: 1000, remaining: 550, percent: 45, reset_at: NOW + 86_400_000, period_start: NOW },
      }),
    ];
    vi.spyOn(client, 'GET').mockImplementation(((path: string) => {
      if (path === '/api/v1/limits') return ok({ limits });
      if (path === '/api/v1/keys') return ok([key]);
      if (path === '/api/v1/teams') return ok([{ id: 1, name: 'acme', created_at: 0, role: null }]);
      if (path === '/api/v1/routes') return ok([]);
      throw new Error(`unexpected GET ${path}`);
    }) as never);
  });

  test('a viewer sees every limit with its use, remaining and reset, and no edit controls', async () => {
    session = sessionOf(false, [[1, 'acme', 'viewer']]);
    render(wrap(<LimitsPage />));
    const gauge = await screen.findByRole('meter', { name: 'Use of 2 requests / minute on Key n8n prod' });
    expect(gauge.getAttribute('aria-valuenow')).toBe('100');
    expect(within(gauge).getByText('100%')).toBeTruthy();
    expect(gauge.querySelector('.limit-bar.danger')).toBeTruthy();
    const budget = screen.getByRole('meter', { name: 'Use of 1K tokens / month on Instance' });
    expect(budget.getAttribute('aria-valuenow')).toBe('45');
    expect(budget.querySelector('.limit-bar.warning, .limit-bar.danger')).toBeNull();
    expect(within(budget).getByText('50 reserved for calls in flight')).toBeTruthy();
    expect(screen.getByText('550')).toBeTruthy();
    expect(screen.getByText('Soft')).toBeTruthy();
    expect(screen.getAllByRole('time').length).toBe(2);
    expect(screen.queryByRole('button', { name: 'Add limit' })).toBeNull();
    expect(screen.queryByRole('button', { name: /^(Edit|Remove) limit/ })).toBeNull();
    expect(screen.getByText(/team owners and admins change them/)).toBeTruthy();
  });

  test('a team admin adds a key limit; a bad maximum is refused before sending', async () => {
    session = sessionOf(false, [[1, 'acme', 'admin']]);
    const post = vi.spyOn(client, 'POST').mockImplementation((() => ok(limitOf(9), 201)) as never);
    render(wrap(<LimitsPage />));
    await screen.findByRole('meter', { name: /Key n8n prod/ });
    // the instance limit is not theirs to change; the key's is
    expect(screen.getByRole('button', { name: 'Edit limit 2 requests / minute on Key n8n prod' })).toBeTruthy();
    expect(screen.queryByRole('button', { name: /on Instance/ })).toBeNull();
    fireEvent.click(screen.getByRole('button', { name: 'Add limit' }));
    const dialog = screen.getByRole('dialog', { name: 'Add limit' });
    const scopes = within(dialog).getByLabelText('Applies to') as HTMLSelectElement;
    expect([...scopes.options].map((o) => o.value)).toEqual(['team', 'key']);
    fireEvent.change(scopes, { target: { value: 'key' } });
    fireEvent.change(within(dialog).getByLabelText('Key'), { target: { value: '5' } });
    fireEvent.change(within(dialog).getByLabelText('Maximum'), { target: { value: '0' } });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Create' }));
    expect(await within(dialog).findByText('A whole number of at least 1.')).toBeTruthy();
    expect(post).not.toHaveBeenCalled();
    fireEvent.change(within(dialog).getByLabelText('Maximum'), { target: { value: '2' } });
    fireEvent.change(within(dialog).getByLabelText('Alert at (percent)'), { target: { value: '50, 100' } });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Create' }));
    await waitFor(() =>
      expect(post).toHaveBeenCalledWith('/api/v1/limits', {
        body: {
          scope: { type: 'key', id: 5 },
          kind: { type: 'requests', per: 'minute', max: 2 },
          enforcement: 'hard',
          alert_at: [50, 100],
          include_reported: false,
        },
      }),
    );
    await waitFor(() => expect(screen.queryByRole('dialog', { name: 'Add limit' })).toBeNull());
  });

  test('a budget shows its period and counter option; the server refusal shows at the field', async () => {
    session = sessionOf(true, []);
    vi.spyOn(client, 'POST').mockImplementation((() =>
      failure(403, 'above_team_limit', 'max is above the team limit of 1000 tokens / month', 'kind.max')) as never);
    render(wrap(<LimitsPage />));
    await screen.findByRole('meter', { name: /Key n8n prod/ });
    fireEvent.click(screen.getByRole('button', { name: 'Add limit' }));
    const dialog = screen.getByRole('dialog', { name: 'Add limit' });
    expect(within(dialog).queryByLabelText('Period')).toBeNull();
    fireEvent.change(within(dialog).getByLabelText('Kind'), { target: { value: 'token_budget' } });
    expect(within(dialog).getByLabelText('Period')).toBeTruthy();
    expect(within(dialog).getByLabelText('Count token-counter readings')).toBeTruthy();
    expect(within(dialog).queryByLabelText('Window')).toBeNull();
    fireEvent.change(within(dialog).getByLabelText('Maximum'), { target: { value: '5000' } });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Create' }));
    const message = await within(dialog).findByText('max is above the team limit of 1000 tokens / month');
    const input = within(dialog).getByLabelText('Maximum');
    expect(input.getAttribute('aria-invalid')).toBe('true');
    expect(input.getAttribute('aria-describedby')).toContain(message.id);
  });

  test('editing sends the new kind with PUT; removing asks first', async () => {
    session = sessionOf(true, []);
    const put = vi.spyOn(client, 'PUT').mockImplementation((() => ok(limitOf(1))) as never);
    const del = vi.spyOn(client, 'DELETE').mockImplementation((() => ok(undefined, 204)) as never);
    render(wrap(<LimitsPage />));
    fireEvent.click(await screen.findByRole('button', { name: 'Edit limit 2 requests / minute on Key n8n prod' }));
    const dialog = screen.getByRole('dialog', { name: 'Edit limit on Key n8n prod' });
    expect(within(dialog).queryByLabelText('Applies to')).toBeNull();
    fireEvent.change(within(dialog).getByLabelText('Maximum'), { target: { value: '10' } });
    fireEvent.change(within(dialog).getByLabelText('When reached'), { target: { value: 'soft' } });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Save' }));
    await waitFor(() =>
      expect(put).toHaveBeenCalledWith('/api/v1/limits/{id}', {
        params: { path: { id: 1 } },
        body: { kind: { type: 'requests', per: 'minute', max: 10 }, enforcement: 'soft', alert_at: [80, 100], include_reported: false },
      }),
    );
    await waitFor(() => expect(screen.queryByRole('dialog', { name: /Edit limit/ })).toBeNull());

    fireEvent.click(screen.getByRole('button', { name: 'Remove limit 2 requests / minute on Key n8n prod' }));
    const confirm = screen.getByRole('dialog', { name: 'Remove this limit?' });
    expect(del).not.toHaveBeenCalled();
    fireEvent.click(within(confirm).getByRole('button', { name: 'Remove' }));
    await waitFor(() => expect(del).toHaveBeenCalledWith('/api/v1/limits/{id}', { params: { path: { id: 1 } } }));
  });

  test('?scope=key&id=5 shows only that key’s limits', async () => {
    session = sessionOf(false, [[1, 'acme', 'viewer']]);
    render(wrap(<LimitsPage />, '/limits?scope=key&id=5'));
    await screen.findByRole('meter', { name: /Key n8n prod/ });
    expect(screen.queryByRole('meter', { name: /on Instance/ })).toBeNull();
  });
});
