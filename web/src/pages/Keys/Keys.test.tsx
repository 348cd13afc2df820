import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { MemoryRouter } from 'react-router';
import type { ReactNode } from 'react';
import { client, type Schemas } from '../../api/client';
import { permissionsOf, type Session } from '../../auth';
import { ToastProvider } from '../../components/ui';

// The page reads the session through useAuth / usePermissions; the tests choose it.
let session: Session;
vi.mock('../../auth', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../auth')>();
  return {
    ...real,
    useAuth: () => ({ session, signIn: vi.fn(), signOut: vi.fn(), refresh: vi.fn() }),
    usePermissions: () => real.permissionsOf(session),
  };
});

import { localDay } from '../../localTime';
import KeysPage from '.';
import { CreateKeyDialog } from './CreateKeyDialog';
import { EditKeyDialog } from './EditKeyDialog';
import { expiryTimestamp, filterKeys, mayChangeKey, mayRevealKey, modelsText, parseModels } from './model';

const DAY = 86_400_000;
const NOW = new Date(2026, 10, 23, 15, 30).getTime();

function sessionOf(email: string, isAdmin: boolean, memberships: [number, string, string][]): Session {
  return {
    csrf_token: 'x',
    user: {
      id: 7,
      email,
      display_name: email,
      is_admin: isAdmin,
      created_at: 0,
      has_password: true,
    },
    memberships: memberships.map(([team_id, team_name, role]) => ({
      team_id,
      team_name,
      role,
      user_id: 7,
      email,
      display_name: email,
      joined_at: 0,
    })),
  } as Session;
}

function keyOf(id: number, name: string, extra: Partial<Schemas['KeyView']> = {}): Schemas['KeyView'] {
  return {
    id,
    team_id: 1,
    team: 'acme',
    name,
    description: '',
    prefix: `ntk_Ab${id}…wxyz`,
    status: 'active',
    created_by: 'user:someone@example.com',
    created_at: NOW - 10 * DAY,
    expires_at: null,
    revoked_at: null,
    last_used_at: null,
    last_used: 'never used',
    route_ids: null,
    revealable: false,
    ...extra,
  };
}

const routes: Schemas['RouteView'][] = [
  { id: 1, team_id: null, name: 'openai', prefix: '/openai', upstream_url: 'https://api.openai.com', kind: 'openai', strip_prefix: true, connect_timeout_ms: 5000, timeout_ms: 300000, enabled: true, has_credential: false, created_at: 0, updated_at: 0 },
  { id: 2, team_id: 1, name: 'billing', prefix: '/billing', upstream_url: 'http://billing', kind: 'http', strip_prefix: true, connect_timeout_ms: 5000, timeout_ms: 300000, enabled: true, has_credential: false, created_at: 0, updated_at: 0 },
  { id: 3, team_id: 2, name: 'other-team', prefix: '/other', upstream_url: 'http://other', kind: 'http', strip_prefix: true, connect_timeout_ms: 5000, timeout_ms: 300000, enabled: true, has_credential: false, created_at: 0, updated_at: 0 },
];

function ok<T>(data: T, status = 200) {
  return Promise.resolve({ data, error: undefined, response: new Response(null, { status }) }) as never;
}

function wrap(children: ReactNode) {
  const queries = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return (
    <QueryClientProvider client={queries}>
      <ToastProvider>
        <MemoryRouter initialEntries={['/keys']}>{children}</MemoryRouter>
      </ToastProvider>
    </QueryClientProvider>
  );
}

afterEach(() => {
  cleanup();
  vi.restoreAllMocks();
});

describe('expiry presets → timestamps', () => {
  test('no expiry, N days from now, or the end of a chosen day', () => {
    expect(expiryTimestamp('never', '', NOW)).toBeNull();
    expect(expiryTimestamp('30', '', NOW)).toBe(NOW + 30 * DAY);
    expect(expiryTimestamp('90', '', NOW)).toBe(NOW + 90 * DAY);
    expect(expiryTimestamp('365', '', NOW)).toBe(NOW + 365 * DAY);
    expect(expiryTimestamp('date', '2027-01-15', NOW)).toBe(new Date(2027, 0, 15, 23, 59, 59, 999).getTime());
    // today still counts (the end of the day is ahead); the past, empty and garbage do not
    expect(expiryTimestamp('date', localDay(NOW), NOW)).toBeGreaterThan(NOW);
    expect(expiryTimestamp('date', '2026-11-22', NOW)).toBeUndefined();
    expect(expiryTimestamp('date', '', NOW)).toBeUndefined();
    expect(expiryTimestamp('date', '15/01/2027', NOW)).toBeUndefined();
  });
});

describe('who may do what with a key', () => {
  const mine = keyOf(1, 'mine', { created_by: 'user:me@example.com', revealable: true });
  const theirs = keyOf(2, 'theirs', { revealable: true });
  test('owners and admins manage and reveal every key of their team', () => {
    for (const role of ['owner', 'admin']) {
      const can = permissionsOf(sessionOf('me@example.com', false, [[1, 'acme', role]]));
      expect(mayChangeKey(can, 'me@example.com', theirs)).toBe(true);
      expect(mayRevealKey(can, theirs)).toBe(true);
      expect(mayRevealKey(can, { ...theirs, revealable: false })).toBe(false);
      expect(mayRevealKey(can, { ...theirs, status: 'revoked' }), 'a revoked key is not offered').toBe(false);
    }
  });
  test('members change only the keys they created, and never reveal', () => {
    const can = permissionsOf(sessionOf('me@example.com', false, [[1, 'acme', 'member']]));
    expect(mayChangeKey(can, 'me@example.com', mine)).toBe(true);
    expect(mayChangeKey(can, 'me@example.com', theirs)).toBe(false);
    expect(mayRevealKey(can, mine)).toBe(false);
  });
  test('viewers and outsiders change nothing; instance admins everything', () => {
    const viewer = permissionsOf(sessionOf('me@example.com', false, [[1, 'acme', 'viewer']]));
    expect(mayChangeKey(viewer, 'me@example.com', mine)).toBe(false);
    const outsider = permissionsOf(sessionOf('me@example.com', false, [[2, 'globex', 'owner']]));
    expect(mayChangeKey(outsider, 'me@example.com', theirs)).toBe(false);
    const admin = permissionsOf(sessionOf('root@example.com', true, []));
    expect(mayChangeKey(admin, 'root@example.com', theirs)).toBe(true);
    expect(mayRevealKey(admin, theirs)).toBe(true);
  });
  test('the client-side filter matches name, prefix and description, team and status', () => {
    const keys = [keyOf(1, 'n8n prod'), keyOf(2, 'ci', { team_id: 2, description: 'GitHub Actions' }), keyOf(3, 'old', { status: 'revoked' })];
    expect(filterKeys(keys, 'N8N', undefined, '').map((k) => k.id)).toEqual([1]);
    expect(filterKeys(keys, 'ab3', undefined, '').map((k) => k.id)).toEqual([3]);
    expect(filterKeys(keys, 'github', undefined, '').map((k) => k.id)).toEqual([2]);
    expect(filterKeys(keys, '', 2, '').map((k) => k.id)).toEqual([2]);
    expect(filterKeys(keys, '', undefined, 'revoked').map((k) => k.id)).toEqual([3]);
  });
});

describe('the keys page offers only what the role may do', () => {
  const keys = [
    keyOf(1, 'my key', { created_by: 'user:me@example.com', revealable: true }),
    keyOf(2, 'their key', { revealable: true, last_used_at: NOW - 3 * 60_000 }),
  ];
  beforeEach(() => {
    vi.spyOn(client, 'GET').mockImplementation(((path: string) => {
      if (path === '/api/v1/keys') return ok(keys);
      if (path === '/api/v1/routes') return ok(routes);
      if (path === '/api/v1/teams') return ok([{ id: 1, name: 'acme', created_at: 0, role: null }]);
      throw new Error(`unexpected GET ${path}`);
    }) as never);
  });

  test('a viewer sees the list but no create, edit, revoke, delete or reveal', async () => {
    session = sessionOf('me@example.com', false, [[1, 'acme', 'viewer']]);
    render(wrap(<KeysPage />));
    await screen.findByText('their key');
    expect(screen.getAllByText('Never used').length).toBeGreaterThan(0);
    expect(screen.queryByRole('button', { name: 'Create key' })).toBeNull();
    expect(screen.queryByRole('button', { name: /^(Revoke|Delete|Edit|Reveal) / })).toBeNull();
  });

  test('a member creates keys and manages only their own', async () => {
    session = sessionOf('me@example.com', false, [[1, 'acme', 'member']]);
    render(wrap(<KeysPage />));
    await screen.findByText('their key');
    expect(screen.getByRole('button', { name: 'Create key' })).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Revoke my key' })).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Delete my key' })).toBeTruthy();
    expect(screen.queryByRole('button', { name: 'Revoke their key' })).toBeNull();
    expect(screen.queryByRole('button', { name: 'Delete their key' })).toBeNull();
    expect(screen.queryByRole('button', { name: /^Reveal/ })).toBeNull();
  });

  test('a team admin manages and reveals every key of the team', async () => {
    session = sessionOf('me@example.com', false, [[1, 'acme', 'admin']]);
    render(wrap(<KeysPage />));
    await screen.findByText('their key');
    for (const name of ['my key', 'their key']) {
      expect(screen.getByRole('button', { name: `Revoke ${name}` })).toBeTruthy();
      expect(screen.getByRole('button', { name: `Delete ${name}` })).toBeTruthy();
      expect(screen.getByRole('button', { name: `Reveal ${name}` })).toBeTruthy();
    }
  });
});

describe('creating a key', () => {
  test('the secret is shown once, with a copy button, and the form is gone', async () => {
    session = sessionOf('me@example.com', false, [[1, 'acme', 'member']]);
    const secret = 'ntk_abcdefghijklmnopqrstuvwxyz0123456789';
    const post = vi.spyOn(client, 'POST').mockImplementation((() =>
      ok({ ...keyOf(9, 'n8n'), key: secret }, 201)) as never);
    const writeText = vi.fn().mockResolvedValue(undefined);
    Object.defineProperty(navigator, 'clipboard', { value: { writeText }, configurable: true });
    vi.spyOn(Date, 'now').mockReturnValue(NOW);

    render(wrap(<CreateKeyDialog teams={[{ id: 1, name: 'acme' }]} routes={routes} onClose={() => {}} />));
    const dialog = screen.getByRole('dialog', { name: 'Create API key' });
    fireEvent.change(within(dialog).getByLabelText('Name'), { target: { value: '  n8n  ' } });
    fireEvent.change(within(dialog).getByLabelText('Expiry'), { target: { value: '90' } });
    fireEvent.click(within(dialog).getByLabelText('Only these routes'));
    // routes of other teams are not offered
    expect(within(dialog).queryByLabelText(/other-team/)).toBeNull();
    // nothing picked: refused at the field, nothing sent
    fireEvent.click(within(dialog).getByRole('button', { name: 'Create' }));
    expect(await within(dialog).findByText('Pick at least one route.')).toBeTruthy();
    expect(post).not.toHaveBeenCalled();
    fireEvent.click(within(dialog).getByLabelText(/billing/));
    fireEvent.click(within(dialog).getByRole('button', { name: 'Create' }));

    const box = await within(dialog).findByLabelText('New API key');
    expect(box.textContent).toBe(secret);
    expect(post).toHaveBeenCalledWith('/api/v1/keys', {
      body: { name: 'n8n', description: '', team_id: 1, expires_at: NOW + 90 * DAY, route_ids: [2] },
    });
    expect(within(dialog).getByRole('alert').textContent).toMatch(/will not be shown again/);
    // the form cannot be sent twice
    expect(within(dialog).queryByRole('button', { name: 'Create' })).toBeNull();
    expect(within(dialog).queryByLabelText('Name')).toBeNull();

    fireEvent.click(within(dialog).getByRole('button', { name: 'Copy' }));
    await waitFor(() => expect(writeText).toHaveBeenCalledWith(secret));
    expect(await within(dialog).findByRole('button', { name: 'Copied' })).toBeTruthy();
  });

  test('a server error on a field is shown at that field', async () => {
    session = sessionOf('me@example.com', false, [[1, 'acme', 'member']]);
    vi.spyOn(client, 'POST').mockImplementation((() =>
      Promise.resolve({
        data: undefined,
        error: { error: { code: 'invalid', message: 'the name must be 1 to 100 characters', field: 'name' } },
        response: new Response(null, { status: 422 }),
      })) as never);
    render(wrap(<CreateKeyDialog teams={[{ id: 1, name: 'acme' }]} routes={routes} onClose={() => {}} />));
    const dialog = screen.getByRole('dialog', { name: 'Create API key' });
    fireEvent.change(within(dialog).getByLabelText('Name'), { target: { value: 'x' } });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Create' }));
    const message = await within(dialog).findByText('the name must be 1 to 100 characters');
    const input = within(dialog).getByLabelText('Name');
    expect(input.getAttribute('aria-invalid')).toBe('true');
    expect(input.getAttribute('aria-describedby')).toContain(message.id);
  });
});

describe('allowed models', () => {
  test('the text becomes a list of patterns; empty is any model; spaces or too many are refused', () => {
    expect(parseModels(' gpt-4o*, claude-*,gpt-4o* ')).toEqual(['gpt-4o*', 'claude-*']);
    expect(parseModels('  ,  ')).toBeNull();
    expect(parseModels('gpt 4o')).toBeUndefined();
    expect(parseModels('x'.repeat(201))).toBeUndefined();
    expect(parseModels(Array.from({ length: 51 }, (_, i) => `m${i}`).join(','))).toBeUndefined();
    expect(modelsText(['a*', 'b'])).toBe('a*, b');
    expect(modelsText(null)).toBe('');
  });

  test('creating sends the patterns; bad ones are refused at the field', async () => {
    session = sessionOf('me@example.com', false, [[1, 'acme', 'member']]);
    const post = vi.spyOn(client, 'POST').mockImplementation((() =>
      ok({ ...keyOf(9, 'n8n'), key: 'ntk_x', models: ['gpt-4o*'] }, 201)) as never);
    render(wrap(<CreateKeyDialog teams={[{ id: 1, name: 'acme' }]} routes={routes} onClose={() => {}} />));
    const dialog = screen.getByRole('dialog', { name: 'Create API key' });
    fireEvent.change(within(dialog).getByLabelText('Name'), { target: { value: 'n8n' } });
    fireEvent.change(within(dialog).getByLabelText('Allowed models'), { target: { value: 'gpt 4o' } });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Create' }));
    expect(await within(dialog).findByText(/Patterns without spaces/)).toBeTruthy();
    expect(post).not.toHaveBeenCalled();
    fireEvent.change(within(dialog).getByLabelText('Allowed models'), { target: { value: 'gpt-4o*, claude-*' } });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Create' }));
    await waitFor(() =>
      expect(post).toHaveBeenCalledWith('/api/v1/keys', {
        body: { name: 'n8n', description: '', team_id: 1, models: ['gpt-4o*', 'claude-*'] },
      }),
    );
  });

  test('editing sends models only when they changed; clearing them allows any model', async () => {
    session = sessionOf('me@example.com', false, [[1, 'acme', 'admin']]);
    const patch = vi.spyOn(client, 'PATCH').mockImplementation((() => ok(keyOf(1, 'k'))) as never);
    render(wrap(<EditKeyDialog keyView={keyOf(1, 'k', { models: ['gpt-4o*'] })} routes={routes} onClose={() => {}} />));
    const dialog = screen.getByRole('dialog', { name: 'Edit k' });
    const input = within(dialog).getByLabelText('Allowed models') as HTMLInputElement;
    expect(input.value).toBe('gpt-4o*');
    fireEvent.change(input, { target: { value: '' } });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Save' }));
    await waitFor(() =>
      expect(patch).toHaveBeenCalledWith('/api/v1/keys/{id}', { params: { path: { id: 1 } }, body: { models: null } }),
    );
  });

  test('the list shows a key\'s allowed models and its limits', async () => {
    session = sessionOf('me@example.com', false, [[1, 'acme', 'viewer']]);
    vi.spyOn(client, 'GET').mockImplementation(((path: string) => {
      if (path === '/api/v1/keys') return ok([keyOf(1, 'k', { models: ['gpt-4o*', 'claude-*'] })]);
      if (path === '/api/v1/routes') return ok(routes);
      if (path === '/api/v1/teams') return ok([{ id: 1, name: 'acme', created_at: 0, role: null }]);
      if (path === '/api/v1/limits')
        return ok({
          limits: [
            {
              id: 4,
              scope: { type: 'key', id: 1 },
              scope_name: 'k',
              kind: { type: 'requests', per: 'minute', max: 2 },
              enforcement: 'hard',
              alert_at: [80, 100],
              include_reported: false,
              created_by: null,
              created_at: 0,
              usage: { used: 2, reserved: 0, max: 2, remaining: 0, percent: 100, reset_at: null, period_start: null },
            },
          ],
        });
      throw new Error(`unexpected GET ${path}`);
    }) as never);
    render(wrap(<KeysPage />));
    expect(await screen.findByText('Models: gpt-4o*, claude-*')).toBeTruthy();
    const badge = await screen.findByRole('link', { name: '2 requests / minute · 100%' });
    expect(badge.className).toContain('danger');
  });
});
