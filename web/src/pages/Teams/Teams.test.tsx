import { afterEach, describe, expect, it, vi } from 'vitest';

// The API client keeps the `fetch` it was created with: install a replaceable one before it loads.
const server = vi.hoisted(() => {
  const state = {
    handler: (_method: string, _url: URL, _body: unknown): Response => new Response('{}', { status: 500 }),
    calls: [] as { method: string; path: string; body: unknown }[],
  };
  globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(String(input), init);
    const url = new URL(request.url, 'http://localhost');
    const text = request.method === 'GET' ? '' : await request.text();
    const body = text ? JSON.parse(text) : undefined;
    state.calls.push({ method: request.method, path: url.pathname, body });
    return state.handler(request.method, url, body);
  }) as typeof fetch;
  return state;
});

import { cleanup, fireEvent, render, screen, within } from '@testing-library/react';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { MemoryRouter, Route, Routes } from 'react-router';
import type { ReactNode } from 'react';
import { AuthProvider, useAuth, type Role } from '../../auth';
import { ToastProvider } from '../../components/ui';
import TeamsPage from '.';
import { invitableRoles, invitationUrl, mayAssign, memberActions } from './roles';
import { isRole, ROLES } from '../../api/vocabulary';

describe('mayAssign mirrors the server (Role::may_assign)', () => {
  // The server's own cases (crates/tollgate-core/src/role.rs).
  it('agrees with the server tests', () => {
    expect(mayAssign('admin', 'viewer', 'member')).toBe(true);
    expect(mayAssign('admin', null, 'viewer')).toBe(true);
    expect(mayAssign('admin', 'owner', 'member')).toBe(false);
    expect(mayAssign('admin', 'member', 'admin')).toBe(false);
    expect(mayAssign('owner', 'owner', 'viewer')).toBe(true);
    expect(mayAssign('member', null, 'viewer')).toBe(false);
  });

  it('owners may do anything; admins only deal in members and viewers; others nothing', () => {
    const all: (Role | null)[] = [null, ...ROLES];
    for (const current of all) {
      for (const target of ROLES) {
        expect(mayAssign('owner', current, target)).toBe(true);
        const adminMay =
          (target === 'member' || target === 'viewer') &&
          (current === null || current === 'member' || current === 'viewer');
        expect(mayAssign('admin', current, target)).toBe(adminMay);
        expect(mayAssign('member', current, target)).toBe(false);
        expect(mayAssign('viewer', current, target)).toBe(false);
        expect(mayAssign(null, current, target)).toBe(false);
      }
    }
  });
});

describe('invitableRoles', () => {
  it('lets owners invite with any role and admins only members and viewers', () => {
    expect(invitableRoles('owner')).toEqual(['owner', 'admin', 'member', 'viewer']);
    expect(invitableRoles('admin')).toEqual(['member', 'viewer']);
    expect(invitableRoles('member')).toEqual([]);
    expect(invitableRoles('viewer')).toEqual([]);
    expect(invitableRoles(null)).toEqual([]);
  });
});

describe('memberActions: what is offered for which caller and target', () => {
  it('an owner manages everyone when the team has another owner', () => {
    for (const target of ROLES) {
      const a = memberActions('owner', target, 2);
      expect(a.canChangeRole).toBe(true);
      expect(a.canRemove).toBe(true);
      expect(a.roles).toEqual(['owner', 'admin', 'member', 'viewer']);
      expect(a.lastOwner).toBe(false);
    }
  });

  it('the last owner is neither demoted nor removed, even by an owner', () => {
    const a = memberActions('owner', 'owner', 1);
    expect(a).toEqual({ roles: [], canChangeRole: false, canRemove: false, lastOwner: true });
    // With two owners, either may go.
    expect(memberActions('owner', 'owner', 2).canRemove).toBe(true);
  });

  it('an admin manages members and viewers only, and only between those roles', () => {
    expect(memberActions('admin', 'member', 1)).toEqual({
      roles: ['member', 'viewer'],
      canChangeRole: true,
      canRemove: true,
      lastOwner: false,
    });
    expect(memberActions('admin', 'viewer', 1)).toEqual({
      roles: ['member', 'viewer'],
      canChangeRole: true,
      canRemove: true,
      lastOwner: false,
    });
    // Not other admins (nor themselves), not owners.
    expect(memberActions('admin', 'admin', 1)).toEqual({
      roles: [],
      canChangeRole: false,
      canRemove: false,
      lastOwner: false,
    });
    expect(memberActions('admin', 'owner', 3)).toEqual({
      roles: [],
      canChangeRole: false,
      canRemove: false,
      lastOwner: false,
    });
    expect(memberActions('admin', 'owner', 1).lastOwner).toBe(true);
  });

  it('members, viewers and outsiders are offered nothing', () => {
    for (const caller of ['member', 'viewer', null] as const) {
      for (const target of ROLES) {
        const a = memberActions(caller, target, 2);
        expect(a.canChangeRole).toBe(false);
        expect(a.canRemove).toBe(false);
        expect(a.roles).toEqual([]);
      }
    }
  });

  it('the offered roles always contain the current one, so the select shows it', () => {
    for (const caller of ['owner', 'admin'] as const) {
      for (const target of ROLES) {
        const a = memberActions(caller, target, 2);
        if (a.canChangeRole) expect(a.roles).toContain(target);
      }
    }
  });
});

describe('invitationUrl', () => {
  it('makes the link absolute on this origin', () => {
    expect(invitationUrl('/invite/abc', { origin: 'https://gw.example.com', pathname: '/teams/3' })).toBe(
      'https://gw.example.com/invite/abc',
    );
  });

  it('keeps the /console prefix when the console is served there', () => {
    expect(invitationUrl('/invite/abc', { origin: 'https://x.io', pathname: '/console/teams/3' })).toBe(
      'https://x.io/console/invite/abc',
    );
    expect(invitationUrl('/invite/abc', { origin: 'https://x.io', pathname: '/console' })).toBe(
      'https://x.io/console/invite/abc',
    );
    // A path that merely starts with the letters is not the prefix.
    expect(invitationUrl('/invite/abc', { origin: 'https://x.io', pathname: '/consoles' })).toBe(
      'https://x.io/invite/abc',
    );
  });

  it('accepts a link without its leading slash', () => {
    expect(invitationUrl('invite/abc', { origin: 'http://localhost:8317', pathname: '/' })).toBe(
      'http://localhost:8317/invite/abc',
    );
  });
});

describe('isRole', () => {
  it('accepts the four roles only', () => {
    expect(ROLES.every(isRole)).toBe(true);
    expect(isRole('superuser')).toBe(false);
    expect(isRole(null)).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
// The team page as a team admin (not an instance admin) sees it.

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

const member = (user_id: number, email: string, role: Role) => ({
  team_id: 2,
  team_name: 'acme',
  user_id,
  email,
  display_name: email.split('@')[0],
  role,
  joined_at: Date.UTC(2026, 0, 1),
});

const members = [
  member(1, 'olive@example.com', 'owner'),
  member(2, 'adam@example.com', 'admin'),
  member(3, 'mia@example.com', 'member'),
  member(4, 'vic@example.com', 'viewer'),
];

function teamAdminServer(method: string, url: URL): Response {
  const path = url.pathname;
  if (path === '/api/v1/auth/me') {
    return json({
      user: {
        id: 2,
        email: 'adam@example.com',
        display_name: 'adam',
        is_admin: false,
        created_at: 0,
        has_password: true,
      },
      memberships: [members[1]],
      csrf_token: 'csrf',
    });
  }
  if (path === '/api/v1/teams/2') return json({ id: 2, name: 'acme', created_at: 0, role: 'admin' });
  if (path === '/api/v1/teams/2/members') return json(members);
  if (path === '/api/v1/teams/2/invitations' && method === 'GET') {
    return json([
      {
        id: 9,
        email: 'new@example.com',
        team_id: 2,
        team: 'acme',
        role: 'viewer',
        created_at: Date.now() - 1000,
        expires_at: Date.now() + 86_400_000,
      },
    ]);
  }
  if (path === '/api/v1/teams/2/members/3' && method === 'PUT') {
    return json({ error: { code: 'conflict', message: 'the server says no: 409' } }, 409);
  }
  return json({ error: { code: 'not_found', message: `unexpected ${method} ${path}` } }, 404);
}

/** Renders its children once signed in (what RequireSession does in the app). */
function SignedIn({ children }: { children: ReactNode }) {
  const { session } = useAuth();
  return session ? <>{children}</> : null;
}

describe('the team page for a team admin', () => {
  afterEach(() => {
    cleanup();
    server.calls = [];
  });

  it('offers role changes and removal for members and viewers only, and shows the server refusal', async () => {
    server.handler = teamAdminServer;
    const queries = new QueryClient({ defaultOptions: { queries: { retry: false } } });
    render(
      <QueryClientProvider client={queries}>
        <AuthProvider>
          <ToastProvider>
            <MemoryRouter initialEntries={['/teams/2']}>
              <Routes>
                <Route
                  path="/teams/:id"
                  element={
                    <SignedIn>
                      <TeamsPage />
                    </SignedIn>
                  }
                />
              </Routes>
            </MemoryRouter>
          </ToastProvider>
        </AuthProvider>
      </QueryClientProvider>,
    );

    expect(await screen.findByRole('heading', { level: 1, name: 'acme' })).toBeTruthy();
    await screen.findByText('olive@example.com');

    // Owners and admins (including the caller): no select, no remove.
    for (const email of ['olive@example.com', 'adam@example.com']) {
      expect(screen.queryByLabelText(`Role of ${email}`)).toBeNull();
      expect(screen.queryByRole('button', { name: `Remove ${email}` })).toBeNull();
    }
    // Members and viewers: member/viewer only.
    for (const email of ['mia@example.com', 'vic@example.com']) {
      const select = screen.getByLabelText(`Role of ${email}`) as HTMLSelectElement;
      expect([...select.options].map((o) => o.value)).toEqual(['member', 'viewer']);
      expect(screen.getByRole('button', { name: `Remove ${email}` })).toBeTruthy();
    }
    // No "Add member" (that needs the user list, for instance admins), but invitations are there.
    expect(screen.queryByRole('button', { name: 'Add member' })).toBeNull();
    expect(screen.queryByRole('button', { name: 'Delete team' })).toBeNull();
    expect(screen.getByRole('button', { name: 'Rename' })).toBeTruthy();
    expect(await screen.findByText('new@example.com')).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Withdraw invitation for new@example.com' })).toBeTruthy();

    // A refused change shows the server's message.
    fireEvent.change(screen.getByLabelText('Role of mia@example.com'), { target: { value: 'viewer' } });
    expect(await screen.findByText('the server says no: 409')).toBeTruthy();
    const put = server.calls.find((c) => c.method === 'PUT');
    expect(put).toEqual({ method: 'PUT', path: '/api/v1/teams/2/members/3', body: { role: 'viewer' } });

    // The invite dialog offers the roles an admin may give.
    fireEvent.click(screen.getByRole('button', { name: 'Invite member' }));
    const dialog = await screen.findByRole('dialog', { name: 'Invite to team' });
    const role = within(dialog).getByLabelText(/^Role/) as HTMLSelectElement;
    expect([...role.options].map((o) => o.value)).toEqual(['member', 'viewer']);
  });
});
