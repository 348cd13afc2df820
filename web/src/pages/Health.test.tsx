import { afterEach, describe, expect, it, vi } from 'vitest';

// The API client takes `fetch` when it is created, so the stub must exist before the import.
const fetchMock = vi.hoisted(() => {
  const f = vi.fn();
  globalThis.fetch = f as unknown as typeof fetch;
  return f;
});

import { bytes, fetchHealth, formatFigure, statusTone, uptime } from './Health';

const report = {
  status: 'down',
  version: '0.1.0',
  uptime_seconds: 5,
  components: { store: { status: 'down', detail: 'the store does not answer', backend: 'sqlite' } },
};

afterEach(() => fetchMock.mockReset());

describe('fetchHealth', () => {
  it('returns the report of a 503: the store is down, the page still shows every component', async () => {
    fetchMock.mockResolvedValue(new Response(JSON.stringify(report), { status: 503, headers: { 'content-type': 'application/json' } }));
    const r = await fetchHealth();
    expect(r.status).toBe('down');
    expect(r.components.store.detail).toBe('the store does not answer');
    expect(String(fetchMock.mock.calls[0][0]?.url ?? fetchMock.mock.calls[0][0])).toMatch(/\/health\/detailed$/);
  });

  it('throws on an answer that is not a report', async () => {
    fetchMock.mockResolvedValue(new Response('{"error":{"code":"x","message":"nope"}}', { status: 500, headers: { 'content-type': 'application/json' } }));
    await expect(fetchHealth()).rejects.toMatchObject({ status: 500, message: 'nope' });
    fetchMock.mockRejectedValue(new TypeError('offline'));
    await expect(fetchHealth()).rejects.toMatchObject({ status: 0, code: 'network' });
  });
});

describe('formatting', () => {
  it('colours statuses', () => {
    expect(statusTone('ok')).toBe('success');
    expect(statusTone('degraded')).toBe('warning');
    expect(statusTone('down')).toBe('danger');
  });

  it('writes uptimes in days, hours and minutes', () => {
    expect(uptime(42, 'en')).toBe('42s');
    expect(uptime(93_784, 'en')).toBe('1d 2h 3m');
    expect(uptime(3_660, 'en')).toBe('1h 1m');
    expect(uptime(120, 'en')).toBe('2m');
  });

  it('formats figures by their name', () => {
    expect(bytes(0, 'en')).toBe('0 bytes');
    expect(bytes(1536, 'en')).toBe('1.5 kB');
    expect(bytes(5 * 1024 * 1024, 'en')).toBe('5 MB');
    expect(formatFigure('round_trip_ms', 0.34, 'en')).toBe('0.3 ms');
    expect(formatFigure('queue_depth', 12345, 'en')).toBe('12,345');
    expect(formatFigure('backend', 'postgres', 'en')).toBe('postgres');
  });
});
