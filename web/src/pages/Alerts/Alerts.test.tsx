import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { MemoryRouter } from 'react-router';
import type { ReactNode } from 'react';
import { ApiError, client } from '../../api/client';
import { epochMs, type ChannelView, type DeliveryView } from '../../api/vocabulary';
import { permissionsOf, type Session } from '../../auth';
import { ToastProvider } from '../../components/ui';
import { dateTime } from '../../format';

let session: Session;
vi.mock('../../auth', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../auth')>();
  return {
    ...real,
    useAuth: () => ({ session, signIn: vi.fn(), signOut: vi.fn(), refresh: vi.fn() }),
    usePermissions: () => real.permissionsOf(session),
  };
});

import AlertsPage from '.';
import { channelBody, deliveryTone, fieldOf, maskUrl, mayManageChannels, validateChannel } from './model';

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

const channel: ChannelView = {
  id: 3,
  name: 'ops',
  format: 'generic',
  url: 'https://hooks.example.com/services/T0…/****',
  created_by: 'user:root@example.com',
  created_at: NOW,
};

function deliveryOf(id: number, extra: Partial<DeliveryView> = {}): DeliveryView {
  return {
    id,
    channel_id: 3,
    channel_name: 'ops',
    dedup_key: `budget:1:100:${id}`,
    kind: 'budget',
    summary: 'Key n8n prod reached 100 % of 2 requests / minute',
    attempt: 1,
    at: NOW - id * 1000,
    status: 'delivered',
    http_status: 200,
    latency_ms: 42,
    error: null,
    ...extra,
  };
}

function ok<T>(data: T, status = 200) {
  return Promise.resolve({ data, error: undefined, response: new Response(null, { status }) }) as never;
}

function wrap(children: ReactNode) {
  const queries = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return (
    <QueryClientProvider client={queries}>
      <ToastProvider>
        <MemoryRouter initialEntries={['/alerts']}>{children}</MemoryRouter>
      </ToastProvider>
    </QueryClientProvider>
  );
}

afterEach(() => {
  cleanup();
  vi.restoreAllMocks();
});

describe('the channel form and the delivery list', () => {
  test('a name and an http(s) URL without credentials; the body is trimmed', () => {
    expect(validateChannel({ name: ' ops ', url: 'https://hooks.example.com/x', format: 'slack' })).toEqual({});
    expect(validateChannel({ name: '  ', url: 'ftp://example.com', format: 'generic' })).toEqual({ name: 'bad_name', url: 'bad_url' });
    expect(validateChannel({ name: 'x'.repeat(101), url: 'https://u:p@example.com/', format: 'generic' })).toEqual({
      name: 'bad_name',
      url: 'bad_url',
    });
    expect(validateChannel({ name: 'ok', url: 'not a url', format: 'generic' }).url).toBe('bad_url');
    expect(channelBody({ name: ' ops ', url: ' http://127.0.0.1:9000/hook ', format: 'generic' })).toEqual({
      name: 'ops',
      url: 'http://127.0.0.1:9000/hook',
      format: 'generic',
    });
  });

  test('times arrive as epoch ms or RFC 3339 text; both are read', () => {
    expect(epochMs(NOW)).toBe(NOW);
    expect(epochMs(new Date(NOW).toISOString())).toBe(NOW);
    expect(epochMs('2026-12-06T11:00:00+00:00')).toBe(Date.UTC(2026, 11, 6, 11));
    expect(epochMs('yesterday')).toBeNull();
    expect(epochMs(null)).toBeNull();
  });

  test('a webhook path (its credential) is not shown in full', () => {
    expect(maskUrl('https://hooks.slack.com/…')).toBe('https://hooks.slack.com/…');
    expect(maskUrl('https://hooks.slack.com/services/T000/B000/XXXX')).toBe('https://hooks.slack.com/services/…');
    expect(maskUrl('http://127.0.0.1:9000/hook')).toBe('http://127.0.0.1:9000/hook');
    expect(maskUrl('http://127.0.0.1:9000/hook?token=abc')).toBe('http://127.0.0.1:9000/hook/…');
    // display forms from the server pass unchanged
    expect(maskUrl('https://hooks.slack.com/services/T0…/****')).toBe('https://hooks.slack.com/services/T0…/****');
    expect(maskUrl('https://chat.example.com/hooks/8x…')).toBe('https://chat.example.com/hooks/8x…');
  });

  test('tones, server fields and who manages channels', () => {
    expect(deliveryTone('delivered')).toBe('success');
    expect(deliveryTone('failed')).toBe('warning');
    expect(deliveryTone('gave_up')).toBe('danger');
    expect(fieldOf(new ApiError(422, 'invalid', 'm', 'url'))).toBe('url');
    expect(fieldOf(new ApiError(422, 'invalid', 'm', 'webhook'))).toBe('url');
    expect(mayManageChannels(permissionsOf(sessionOf(true, [])))).toBe(true);
    expect(mayManageChannels(permissionsOf(sessionOf(false, [[1, 'acme', 'owner']])))).toBe(false);
  });
});

describe('the alerts page', () => {
  let channels: ChannelView[];
  let deliveries: DeliveryView[];
  let get: ReturnType<typeof vi.spyOn>;
  beforeEach(() => {
    channels = [channel];
    deliveries = [
      deliveryOf(1),
      deliveryOf(2, { status: 'failed', http_status: 500, latency_ms: 1200, error: 'upstream answered 500', attempt: 2 }),
      // a server that sends RFC 3339 text is read the same
      deliveryOf(3, { status: 'gave_up', http_status: null, error: 'connection refused', attempt: 6, at: new Date(NOW - 3000).toISOString() as never }),
    ];
    get = vi.spyOn(client, 'GET').mockImplementation(((path: string) => {
      if (path === '/api/v1/alerts/channels') return ok({ channels });
      if (path === '/api/v1/alerts/deliveries') return ok({ deliveries });
      if (path === '/api/v1/alerts/rules')
        return ok({
          evaluate_interval_secs: 60,
          key_expiry_days: [7, 1],
          route_error_rate_pct: 10,
          route_error_min_calls: 20,
          route_error_window_secs: 300,
          upstream_unreachable_secs: 60,
          degraded_secs: 30,
          spool_stall_secs: 300,
          renotify_secs: 3600,
        });
      throw new Error(`unexpected GET ${path}`);
    }) as never);
  });

  test('deliveries show status, HTTP code, latency and error; a team owner gets no channel controls', async () => {
    session = sessionOf(false, [[1, 'acme', 'owner']]);
    render(wrap(<AlertsPage />));
    const table = (await screen.findByText('Gave up')).closest('table') as HTMLElement;
    const rows = within(table).getAllByRole('row').slice(1);
    expect(rows).toHaveLength(3);
    expect(within(rows[0]).getByText('Delivered')).toBeTruthy();
    expect(within(rows[0]).getByText('200')).toBeTruthy();
    expect(within(rows[0]).getByText('42 ms')).toBeTruthy();
    expect(within(rows[1]).getByText('Failed, will retry')).toBeTruthy();
    expect(within(rows[1]).getByText('500')).toBeTruthy();
    expect(within(rows[1]).getByText('1.2 s')).toBeTruthy();
    expect(within(rows[1]).getByText('upstream answered 500')).toBeTruthy();
    expect(within(rows[2]).getByText('connection refused')).toBeTruthy();
    expect(within(rows[2]).getByRole('time').textContent).toBe(dateTime(NOW - 3000));
    expect(screen.getByText('Refreshes every 5 seconds')).toBeTruthy();
    // the server's display form (the URL itself is stored sealed) is shown as it is
    expect(screen.getByText('https://hooks.example.com/services/T0…/****')).toBeTruthy();
    expect(screen.queryByRole('button', { name: 'Add channel' })).toBeNull();
    expect(get.mock.calls.some((call: unknown[]) => call[0] === '/api/v1/alerts/rules')).toBe(false);
    expect(screen.queryByRole('button', { name: /^(Send a test|Remove) / })).toBeNull();
    // the filter asks the server for one channel's deliveries
    fireEvent.change(screen.getByLabelText('Channel'), { target: { value: '3' } });
    await waitFor(() =>
      expect(get).toHaveBeenCalledWith('/api/v1/alerts/deliveries', { params: { query: { channel_id: 3, limit: 100 } } }),
    );
  });

  test('an admin adds a channel and sees its secret once, with a copy button', async () => {
    session = sessionOf(true, []);
    const secret = 'whsec_0123456789abcdef0123456789abcdef';
    const post = vi.spyOn(client, 'POST').mockImplementation((() =>
      ok({ channel: { ...channel, id: 4, name: 'pager' }, secret }, 201)) as never);
    const writeText = vi.fn().mockResolvedValue(undefined);
    Object.defineProperty(navigator, 'clipboard', { value: { writeText }, configurable: true });
    render(wrap(<AlertsPage />));
    fireEvent.click(await screen.findByRole('button', { name: 'Add channel' }));
    const dialog = screen.getByRole('dialog', { name: 'Add alert channel' });
    fireEvent.change(within(dialog).getByLabelText('Name'), { target: { value: 'pager' } });
    fireEvent.change(within(dialog).getByLabelText('Webhook URL'), { target: { value: 'javascript:alert(1)' } });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Create' }));
    expect(await within(dialog).findByText('An http:// or https:// address.')).toBeTruthy();
    expect(post).not.toHaveBeenCalled();
    fireEvent.change(within(dialog).getByLabelText('Webhook URL'), { target: { value: 'http://127.0.0.1:9000/hook' } });
    fireEvent.change(within(dialog).getByLabelText('Format'), { target: { value: 'slack' } });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Create' }));
    const box = await within(dialog).findByLabelText('Signing secret');
    expect(box.textContent).toBe(secret);
    expect(post).toHaveBeenCalledWith('/api/v1/alerts/channels', {
      body: { name: 'pager', url: 'http://127.0.0.1:9000/hook', format: 'slack' },
    });
    expect(within(dialog).getByRole('alert').textContent).toMatch(/will not be shown again/);
    expect(within(dialog).queryByLabelText('Name')).toBeNull();
    fireEvent.click(within(dialog).getByRole('button', { name: 'Copy' }));
    await waitFor(() => expect(writeText).toHaveBeenCalledWith(secret));
    fireEvent.click(within(dialog).getByRole('button', { name: 'Done' }));
    await waitFor(() => expect(screen.queryByRole('dialog', { name: 'Add alert channel' })).toBeNull());
    expect(screen.queryByText(secret)).toBeNull();
  });

  test('"Send a test" posts to the channel and reports the outcome; removing asks first', async () => {
    session = sessionOf(true, []);
    const post = vi.spyOn(client, 'POST').mockImplementation((() =>
      ok({ delivery: deliveryOf(9, { kind: 'test', status: 'failed', http_status: 503, error: 'upstream answered 503' }) })) as never);
    const del = vi.spyOn(client, 'DELETE').mockImplementation((() => ok(undefined, 204)) as never);
    render(wrap(<AlertsPage />));
    fireEvent.click(await screen.findByRole('button', { name: 'Send a test to ops' }));
    await waitFor(() =>
      expect(post).toHaveBeenCalledWith('/api/v1/alerts/channels/{id}/test', { params: { path: { id: 3 } } }),
    );
    expect(await screen.findByText('Test to ops failed: upstream answered 503')).toBeTruthy();

    fireEvent.click(screen.getByRole('button', { name: 'Remove ops' }));
    const confirm = screen.getByRole('dialog', { name: 'Remove channel ops?' });
    expect(del).not.toHaveBeenCalled();
    fireEvent.click(within(confirm).getByRole('button', { name: 'Remove' }));
    await waitFor(() =>
      expect(del).toHaveBeenCalledWith('/api/v1/alerts/channels/{id}', { params: { path: { id: 3 } } }),
    );
  });

  test('no channels and no deliveries: say so, and how to start', async () => {
    session = sessionOf(true, []);
    channels = [];
    deliveries = [];
    render(wrap(<AlertsPage />));
    expect(await screen.findByText('No channels yet.')).toBeTruthy();
    expect(screen.getByText('Add a webhook to be told when a budget runs out.')).toBeTruthy();
    expect(await screen.findByText('No deliveries yet.')).toBeTruthy();
  });

  test('an instance admin sees the rules in effect, in words', async () => {
    session = sessionOf(true, []);
    render(wrap(<AlertsPage />));
    expect(
      await screen.findByText('A route alerts when more than 10 % of its calls answer 5xx over 5 minutes (at least 20 calls).'),
    ).toBeTruthy();
    expect(screen.getByText('Keys are announced 7, 1 days before they expire.')).toBeTruthy();
    expect(screen.getByText('An upstream alerts after refusing every connection for 1 minute.')).toBeTruthy();
    expect(screen.getByText('Rules run every 1 minute on one instance; an ongoing condition is announced again after 1 hour.')).toBeTruthy();
  });
});
