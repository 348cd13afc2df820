import { afterEach, describe, expect, it, vi } from 'vitest';

// The API client keeps the `fetch` it was created with: install a replaceable one before it loads.
const server = vi.hoisted(() => {
  const state = {
    handler: (_method: string, _path: string, _body: unknown): Response => new Response('{}', { status: 500 }),
    calls: [] as { method: string; path: string; body: unknown }[],
  };
  globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(String(input), init);
    const path = new URL(request.url, 'http://localhost').pathname;
    const text = request.method === 'GET' ? '' : await request.text();
    const body = text ? JSON.parse(text) : undefined;
    state.calls.push({ method: request.method, path, body });
    return state.handler(request.method, path, body);
  }) as typeof fetch;
  return state;
});

import { cleanup, fireEvent, render, screen } from '@testing-library/react';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { MemoryRouter, Route, Routes } from 'react-router';
import { AuthProvider } from '../auth';
import AcceptInvitation from './AcceptInvitation';

const TOKEN = 'a'.repeat(64);
const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
const signedOut = () => json({ error: { code: 'not_signed_in', message: 'sign in' } }, 401);

function renderPage() {
  const queries = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={queries}>
      <AuthProvider>
        <MemoryRouter initialEntries={[`/invite/${TOKEN}`]}>
          <Routes>
            <Route path="/invite/:token" element={<AcceptInvitation />} />
            <Route path="/" element={<h1>Overview page</h1>} />
            <Route path="/sign-in" element={<h1>Sign-in page</h1>} />
          </Routes>
        </MemoryRouter>
      </AuthProvider>
    </QueryClientProvider>,
  );
}

afterEach(() => {
  cleanup();
  server.calls = [];
});

describe('accepting an invitation', () => {
  it('says clearly when the invitation was used or has expired (410)', async () => {
    server.handler = (_m, path) =>
      path === '/api/v1/auth/me'
        ? signedOut()
        : json({ error: { code: 'gone', message: 'this invitation has expired: ask for a new one' } }, 410);
    renderPage();
    expect(await screen.findByRole('heading', { name: 'This invitation can no longer be used' })).toBeTruthy();
    expect(screen.getByText('this invitation has expired: ask for a new one')).toBeTruthy();
    expect(screen.getByRole('link', { name: 'Go to sign-in' })).toBeTruthy();
    expect(screen.getByLabelText('Language')).toBeTruthy();
    expect(screen.queryByRole('button', { name: 'Accept invitation' })).toBeNull();
  });

  it('creates the account, signs in and goes to the overview', async () => {
    let signedIn = false;
    server.handler = (method, path) => {
      if (path === '/api/v1/auth/me') {
        return signedIn
          ? json({
              user: { id: 7, email: 'new@example.com', display_name: 'New', is_admin: false, created_at: 0, has_password: true },
              memberships: [],
              csrf_token: 'x',
            })
          : signedOut();
      }
      if (path === `/api/v1/invitations/${TOKEN}` && method === 'GET') {
        return json({
          email: 'new@example.com',
          team: 'acme',
          role: 'viewer',
          expires_at: Date.now() + 3 * 86_400_000,
          existing_account: false,
        });
      }
      if (path === `/api/v1/invitations/${TOKEN}/accept` && method === 'POST') {
        signedIn = true;
        return json({}, 201);
      }
      return json({ error: { code: 'not_found', message: path } }, 404);
    };
    renderPage();
    expect(await screen.findByRole('heading', { name: 'Join acme on tollgate' })).toBeTruthy();
    expect(screen.getByText(/new@example\.com is invited to the team acme as viewer/)).toBeTruthy();
    expect((screen.getByLabelText(/^E-mail/) as HTMLInputElement).value).toBe('new@example.com');

    fireEvent.change(screen.getByLabelText(/^Display name/), { target: { value: '  New Person ' } });
    fireEvent.change(screen.getByLabelText(/^Password/), { target: { value: 'a long enough passphrase' } });
    fireEvent.change(screen.getByLabelText(/^Confirm password/), { target: { value: 'a different passphrase' } });
    expect(screen.getByText('The passwords do not match.')).toBeTruthy();
    const submit = screen.getByRole('button', { name: 'Accept invitation' }) as HTMLButtonElement;
    expect(submit.disabled).toBe(true);

    fireEvent.change(screen.getByLabelText(/^Confirm password/), { target: { value: 'a long enough passphrase' } });
    expect(submit.disabled).toBe(false);
    fireEvent.click(submit);

    expect(await screen.findByRole('heading', { name: 'Overview page' })).toBeTruthy();
    const accept = server.calls.find((c) => c.method === 'POST');
    expect(accept).toEqual({
      method: 'POST',
      path: `/api/v1/invitations/${TOKEN}/accept`,
      body: { password: 'a long enough passphrase', display_name: 'New Person' },
    });
    // The session was loaded again after the accept set its cookie.
    const mes = server.calls.filter((c) => c.path === '/api/v1/auth/me');
    expect(mes.length).toBeGreaterThanOrEqual(2);
  });

  it('asks an existing account for its password only, and shows a wrong password on the field', async () => {
    server.handler = (method, path) => {
      if (path === '/api/v1/auth/me') return signedOut();
      if (method === 'GET') {
        return json({
          email: 'old@example.com',
          team: 'globex',
          role: 'admin',
          expires_at: Date.now() + 86_400_000,
          existing_account: true,
        });
      }
      return json(
        {
          error: {
            code: 'invalid',
            message: 'this address has an account: give its password',
            field: 'password',
          },
        },
        422,
      );
    };
    renderPage();
    expect(await screen.findByText(/already has an account/)).toBeTruthy();
    expect(screen.queryByLabelText(/^Display name/)).toBeNull();
    expect(screen.queryByLabelText(/^Confirm password/)).toBeNull();
    fireEvent.change(screen.getByLabelText(/^Password/), { target: { value: 'wrong' } });
    fireEvent.click(screen.getByRole('button', { name: 'Accept invitation' }));
    expect(await screen.findByText('this address has an account: give its password')).toBeTruthy();
    expect(screen.getByLabelText(/^Password/).getAttribute('aria-invalid')).toBe('true');
    expect(server.calls.find((c) => c.method === 'POST')?.body).toEqual({ password: 'wrong', display_name: null });
  });
});
