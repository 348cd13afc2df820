import { afterEach, describe, expect, it, vi } from 'vitest';

// The API client keeps the `fetch` it was created with: install a replaceable one before it loads.
const server = vi.hoisted(() => {
  const state = { handler: (_url: URL): Response => new Response('{}', { status: 500 }) };
  globalThis.fetch = ((input: RequestInfo | URL) => {
    const url = new URL(input instanceof Request ? input.url : String(input), 'http://localhost');
    return Promise.resolve(state.handler(url));
  }) as typeof fetch;
  return state;
});

import { act, cleanup, fireEvent, render, screen, within } from '@testing-library/react';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { MemoryRouter, Route, Routes, useLocation } from 'react-router';
import AuditPage, {
  actionTone,
  auditQuery,
  csvUrl,
  filtersFromParams,
  paramsFromFilters,
  type AuditFilters,
} from './Audit';

const blank: AuditFilters = { action: '', entity_type: '', actor: '', from: '', to: '', page: 1 };

describe('URL params ⇄ filters', () => {
  it('reads every filter and the page from the URL', () => {
    const f = filtersFromParams(
      new URLSearchParams('action=key.create&entity_type=key&actor=user%3Aa%40x.io&from=2026-05-01T00:00&to=2026-05-02T12:30&page=3'),
    );
    expect(f).toEqual({
      action: 'key.create',
      entity_type: 'key',
      actor: 'user:a@x.io',
      from: '2026-05-01T00:00',
      to: '2026-05-02T12:30',
      page: 3,
    });
  });

  it('falls back to blank filters and page 1 for missing or bad values', () => {
    expect(filtersFromParams(new URLSearchParams(''))).toEqual(blank);
    expect(filtersFromParams(new URLSearchParams('page=0')).page).toBe(1);
    expect(filtersFromParams(new URLSearchParams('page=-2')).page).toBe(1);
    expect(filtersFromParams(new URLSearchParams('page=abc')).page).toBe(1);
    expect(filtersFromParams(new URLSearchParams('page=2.5')).page).toBe(1);
  });

  it('writes only the filters that are set, and the page only past the first', () => {
    expect(paramsFromFilters(blank).toString()).toBe('');
    expect(paramsFromFilters({ ...blank, action: 'auth.login', page: 1 }).toString()).toBe('action=auth.login');
    expect(paramsFromFilters({ ...blank, actor: '  user:b@x.io ', page: 4 }).toString()).toBe(
      'actor=user%3Ab%40x.io&page=4',
    );
  });

  it('round-trips', () => {
    const f: AuditFilters = {
      action: 'member.role_change',
      entity_type: 'member',
      actor: 'system',
      from: '2026-01-31T23:00',
      to: '2026-02-01T01:00',
      page: 7,
    };
    expect(filtersFromParams(paramsFromFilters(f))).toEqual(f);
  });
});

describe('filters → API query', () => {
  it('leaves out blank filters and never sends the page in the filter part', () => {
    expect(auditQuery(blank)).toEqual({});
    const q = auditQuery({ ...blank, action: 'auth.login', entity_type: 'user', from: '2026-05-01T00:00', page: 9 });
    expect(q).toEqual({ action: 'auth.login', entity_type: 'user', from: new Date(2026, 4, 1).getTime() });
  });
});

describe('CSV link', () => {
  it('asks the v1 endpoint for CSV with the same filters and no paging', () => {
    expect(csvUrl(blank)).toBe('/api/v1/audit?format=csv');
    const url = csvUrl({ ...blank, action: 'auth.login', actor: 'user:a@x.io', to: '2026-05-02T00:00', page: 5 });
    const parsed = new URL(url, 'http://localhost');
    expect(parsed.pathname).toBe('/api/v1/audit');
    expect(Object.fromEntries(parsed.searchParams)).toEqual({
      action: 'auth.login',
      actor: 'user:a@x.io',
      to: String(new Date(2026, 4, 2).getTime()),
      format: 'csv',
    });
    expect(parsed.searchParams.has('page')).toBe(false);
    expect(parsed.searchParams.has('per_page')).toBe(false);
  });
});

describe('action colours', () => {
  it('tells removals, failures, creations and other changes apart', () => {
    expect(actionTone('key.delete')).toBe('danger');
    expect(actionTone('key.revoke')).toBe('danger');
    expect(actionTone('member.remove')).toBe('danger');
    expect(actionTone('auth.login_failed')).toBe('warning');
    expect(actionTone('key.reveal')).toBe('warning');
    expect(actionTone('team.create')).toBe('success');
    expect(actionTone('invitation.accept')).toBe('success');
    expect(actionTone('auth.login')).toBe('');
    expect(actionTone('setting.change')).toBe('info');
  });
});

function Where() {
  const location = useLocation();
  return <output data-testid="where">{location.search}</output>;
}

function renderAt(url: string) {
  const queries = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={queries}>
      <MemoryRouter initialEntries={[url]}>
        <Routes>
          <Route
            path="/audit"
            element={
              <>
                <AuditPage />
                <Where />
              </>
            }
          />
        </Routes>
      </MemoryRouter>
    </QueryClientProvider>,
  );
}

describe('the audit page', () => {
  afterEach(() => cleanup());

  it('queries the API from the URL, shows the entries, and moves filters and pages through the URL', async () => {
    const asked: URLSearchParams[] = [];
    server.handler = (url) => {
      asked.push(url.searchParams);
      const page = Number(url.searchParams.get('page'));
      const body = {
        items: [
          {
            id: 10 + page,
            ts: Date.UTC(2026, 4, 1, 12),
            actor: 'user:alice@example.com',
            action: url.searchParams.get('action') ?? 'key.create',
            entity_type: 'key',
            entity_id: '7',
            summary: `entry on page ${page}`,
            ip: '10.0.0.9',
            team_id: 1,
          },
        ],
        total: 120,
        page,
        per_page: 50,
      };
      return new Response(JSON.stringify(body), { headers: { 'content-type': 'application/json' } });
    };

    renderAt('/audit?action=auth.login&page=2');
    expect(await screen.findByText('entry on page 2')).toBeTruthy();
    expect(asked[0].get('action')).toBe('auth.login');
    expect(asked[0].get('page')).toBe('2');
    expect(asked[0].get('per_page')).toBe('50');
    expect(screen.getByText('10.0.0.9')).toBeTruthy();

    const csv = screen.getByRole('link', { name: 'Download CSV' });
    expect(csv.getAttribute('href')).toBe('/api/v1/audit?action=auth.login&format=csv');

    // The next page goes into the URL and the query.
    fireEvent.click(screen.getByRole('button', { name: 'Next' }));
    expect(await screen.findByText('entry on page 3')).toBeTruthy();
    expect(screen.getByTestId('where').textContent).toBe('?action=auth.login&page=3');

    // A new filter goes back to page 1 and keeps the others.
    const entity = screen.getByLabelText(/Entity type/);
    fireEvent.change(entity, { target: { value: 'key' } });
    expect(await screen.findByText('entry on page 1')).toBeTruthy();
    expect(screen.getByTestId('where').textContent).toBe('?action=auth.login&entity_type=key');
    const last = asked[asked.length - 1];
    expect(last.get('entity_type')).toBe('key');
    expect(last.get('action')).toBe('auth.login');
    expect(screen.getByRole('link', { name: 'Download CSV' }).getAttribute('href')).toBe(
      '/api/v1/audit?action=auth.login&entity_type=key&format=csv',
    );

    // Clicking an actor filters by it.
    const row = screen.getByText('entry on page 1').closest('tr')!;
    await act(async () => {
      fireEvent.click(within(row).getByRole('button', { name: 'user:alice@example.com' }));
    });
    expect(screen.getByTestId('where').textContent).toContain('actor=user%3Aalice%40example.com');
  });

  it('offers the sign-in action under the name "login" in the Action filter', async () => {
    server.handler = () =>
      new Response(JSON.stringify({ items: [], total: 0, page: 1, per_page: 50 }), {
        headers: { 'content-type': 'application/json' },
      });
    renderAt('/audit');
    expect(await screen.findByText('No audit entries match these filters.')).toBeTruthy();
    const action = screen.getByLabelText(/^Action/) as HTMLSelectElement;
    const login = [...action.options].find((o) => o.textContent === 'login');
    expect(login?.value).toBe('auth.login');
    fireEvent.change(action, { target: { value: 'auth.login' } });
    expect(screen.getByTestId('where').textContent).toBe('?action=auth.login');
  });
});
