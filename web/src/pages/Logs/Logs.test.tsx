import { afterEach, describe, expect, test, vi } from 'vitest';
import { cleanup, fireEvent, render, screen, within } from '@testing-library/react';
import { LogDetails } from './LogDrawer';
import { LogTable, rowTone, visibleSlice } from './LogTable';
import {
  AUTO_LOAD_LIMIT,
  DEFAULT_RANGE,
  PAGE_SIZE,
  apiQuery,
  badRange,
  filtersFromParams,
  filtersToParams,
  type LogEntry,
} from './filters';

afterEach(cleanup);

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = Date.UTC(2026, 10, 23, 12, 0, 0);

const params = (text: string) => new URLSearchParams(text);

describe('URL search params ⇄ /api/v1/logs query', () => {
  test('no params: the last 24 hours, newest first, one page', () => {
    const f = filtersFromParams(params(''));
    expect(f).toEqual({ q: '', range: DEFAULT_RANGE });
    expect(apiQuery(f, NOW)).toEqual({ limit: PAGE_SIZE, from: NOW - DAY });
  });

  test('every filter reaches the API under its API name', () => {
    const f = filtersFromParams(params('q=+timeout+&range=7d&team=2&key=5&route=3&model=gpt-4o&status=4xx'));
    expect(apiQuery(f, NOW)).toEqual({
      limit: PAGE_SIZE,
      from: NOW - 7 * DAY,
      q: 'timeout',
      team_id: 2,
      key_id: 5,
      route_id: 3,
      model: 'gpt-4o',
      status: '4xx',
    });
  });

  test('an exact status and the other presets', () => {
    expect(apiQuery(filtersFromParams(params('status=429&range=1h')), NOW)).toEqual({
      limit: PAGE_SIZE,
      from: NOW - HOUR,
      status: '429',
    });
    expect(apiQuery(filtersFromParams(params('range=30d')), NOW).from).toBe(NOW - 30 * DAY);
    // "All retained": no time bound at all.
    const all = apiQuery(filtersFromParams(params('range=all')), NOW);
    expect(all).toEqual({ limit: PAGE_SIZE });
    expect('from' in all).toBe(false);
  });

  test('a custom range passes from and to; a link with only from/to is custom', () => {
    const from = NOW - 3 * DAY;
    const to = NOW - DAY;
    expect(apiQuery(filtersFromParams(params(`range=custom&from=${from}&to=${to}`)), NOW)).toEqual({
      limit: PAGE_SIZE,
      from,
      to,
    });
    const implicit = filtersFromParams(params(`from=${from}`));
    expect(implicit.range).toBe('custom');
    expect(apiQuery(implicit, NOW)).toEqual({ limit: PAGE_SIZE, from });
    // from/to are ignored with a preset range
    expect(apiQuery(filtersFromParams(params(`range=7d&from=${from}&to=${to}`)), NOW)).toEqual({
      limit: PAGE_SIZE,
      from: NOW - 7 * DAY,
    });
  });

  test('malformed values are dropped instead of sent', () => {
    const f = filtersFromParams(params('team=abc&key=-1&route=0&status=6xx&range=forever'));
    expect(apiQuery(f, NOW)).toEqual({ limit: PAGE_SIZE, from: NOW - DAY });
    expect(filtersFromParams(params('status=teapot')).status).toBeUndefined();
    expect(filtersFromParams(params('status=5XX')).status).toBe('5xx');
    expect(filtersFromParams(params(`q=${'x'.repeat(300)}`)).q).toHaveLength(200);
  });

  test('filters written back to the URL leave defaults out and keep the open call', () => {
    const base = params('call=42&q=old');
    const written = filtersToParams({ q: 'err', range: '24h', team_id: 4, status: '5xx' }, base);
    expect(written.get('call')).toBe('42');
    expect(written.get('q')).toBe('err');
    expect(written.has('range')).toBe(false);
    expect(written.get('team')).toBe('4');
    expect(written.get('status')).toBe('5xx');
    // round trip
    const text = 'q=abc&range=custom&from=1000&to=2000&team=1&key=2&route=3&model=m&status=200';
    expect(filtersFromParams(filtersToParams(filtersFromParams(params(text))))).toEqual(filtersFromParams(params(text)));
  });

  test('a backwards custom range is caught before the API refuses it', () => {
    expect(badRange(filtersFromParams(params('range=custom&from=2000&to=1000')))).toBe(true);
    expect(badRange(filtersFromParams(params('range=custom&from=1000&to=2000')))).toBe(false);
  });
});

function entry(id: number, status: number, extra: Partial<LogEntry> = {}): LogEntry {
  return {
    id,
    ts: NOW - id * 1000,
    key_id: 1,
    team_id: 1,
    route_id: 1,
    route: 'openai',
    method: 'POST',
    path: `/openai/v1/chat/completions/${id}`,
    status,
    latency_ms: 120,
    upstream_latency_ms: 100,
    client_ip: '10.0.0.1',
    user_agent: 'test',
    model: 'gpt-4o',
    prompt_tokens: 10,
    completion_tokens: 5,
    total_tokens: 15,
    cached_tokens: 0,
    reasoning_tokens: 0,
    estimated: false,
    cost_usd: 0.001,
    error: null,
    source: 'gateway',
    request_id: null,
    ...extra,
  };
}

const names = {
  keyNames: new Map([[1, 'ci-key']]),
  routeNames: new Map([[1, 'openai']]),
  teamNames: new Map([[1, 'acme']]),
};

describe('status colours', () => {
  test('rows are marked by status class; an error message marks a row too', () => {
    expect(rowTone(entry(1, 200))).toBeNull();
    expect(rowTone(entry(1, 304))).toBeNull();
    expect(rowTone(entry(1, 404))).toBe('warning');
    expect(rowTone(entry(1, 429))).toBe('warning');
    expect(rowTone(entry(1, 500))).toBe('danger');
    expect(rowTone(entry(1, 504))).toBe('danger');
    expect(rowTone(entry(1, 200, { error: 'stream cut' }))).toBe('danger');
  });

  test('the table colours badges by class and marks error rows', () => {
    const rows = [entry(1, 200), entry(2, 302), entry(3, 429, { error: 'rate_limited' }), entry(4, 502, { error: 'upstream down' })];
    render(<LogTable rows={rows} {...names} onOpen={() => {}} />);
    const trs = document.querySelectorAll('tbody tr.logs-row');
    expect(trs).toHaveLength(4);
    const badge = (tr: Element) => tr.querySelector('.badge')!;
    expect(badge(trs[0]).className).toContain('success');
    expect(badge(trs[1]).className).toContain('info');
    expect(badge(trs[2]).className).toContain('warning');
    expect(badge(trs[3]).className).toContain('danger');
    expect(trs[0].className).not.toMatch(/row-(warning|danger)/);
    expect(trs[1].className).not.toMatch(/row-(warning|danger)/);
    expect(trs[2].className).toContain('row-warning');
    expect(trs[3].className).toContain('row-danger');
    // the error text is available to screen readers in the row
    expect(within(trs[3] as HTMLElement).getByText('upstream down')).toBeTruthy();
    // key names, not ids
    expect(within(trs[0] as HTMLElement).getByText('ci-key')).toBeTruthy();
  });
});

describe('the detail drawer', () => {
  test('an llm call lists every upstream attempt: target, model sent, status and time', () => {
    const e = entry(1, 200, {
      attempts: [
        { target: 'openai-1', model: 'gpt-4o', status: 503, ms: 41 },
        { target: 'azure-eu', model: 'gpt4o-prod', status: 200, ms: 230 },
      ],
    });
    render(<LogDetails e={e} {...names} />);
    const rows = document.querySelectorAll('table.logs-attempts tbody tr');
    expect(rows).toHaveLength(2);
    const cells = (tr: Element) => Array.from(tr.querySelectorAll('td')).map((td) => td.textContent);
    expect(cells(rows[0]).slice(0, 3)).toEqual(['1', 'openai-1', 'gpt-4o']);
    expect(cells(rows[0])[3]).toContain('503');
    expect(rows[0].querySelector('.badge')!.className).toContain('danger');
    expect(cells(rows[1]).slice(0, 3)).toEqual(['2', 'azure-eu', 'gpt4o-prod']);
    expect(cells(rows[1])[3]).toContain('200');
    expect(cells(rows[1])[4]).toContain('230');
  });

  test('a call without attempts has no attempts section', () => {
    render(<LogDetails e={entry(1, 200)} {...names} />);
    expect(document.querySelector('table.logs-attempts')).toBeNull();
  });
});

describe('the windowed table', () => {
  test('only a window of rows is rendered, whatever is loaded', () => {
    expect(visibleSlice(0, 600, 10)).toEqual([0, 10]);
    const [start, end] = visibleSlice(40 * 1000, 600, 1_000_000);
    expect(start).toBeGreaterThan(950);
    expect(end - start).toBeLessThan(60);

    const many = Array.from({ length: AUTO_LOAD_LIMIT }, (_, i) => entry(i + 1, 200));
    render(<LogTable rows={many} {...names} onOpen={() => {}} />);
    const rendered = document.querySelectorAll('tbody tr.logs-row').length;
    expect(rendered).toBeGreaterThan(10);
    expect(rendered).toBeLessThan(80);
    // spacer rows keep the scroll height of every loaded row
    const spacer = document.querySelector<HTMLElement>('tbody tr.logs-spacer:last-child')!;
    expect(parseInt(spacer.style.height, 10)).toBe((AUTO_LOAD_LIMIT - rendered) * 40);
  });

  test('Enter or a click on a row opens it; the table asks for more near the end', () => {
    const onOpen = vi.fn();
    const onNearEnd = vi.fn();
    const rows = [entry(7, 200), entry(8, 500)];
    render(<LogTable rows={rows} {...names} onOpen={onOpen} canAutoLoad onNearEnd={onNearEnd} />);
    const trs = screen.getAllByRole('row').filter((r) => r.classList.contains('logs-row'));
    expect(trs[0].tabIndex).toBe(0);
    expect(trs[1].tabIndex).toBe(-1);
    fireEvent.keyDown(trs[1], { key: 'Enter' });
    expect(onOpen).toHaveBeenCalledWith(8);
    fireEvent.click(trs[0]);
    expect(onOpen).toHaveBeenCalledWith(7);
    expect(onNearEnd).toHaveBeenCalled();
  });
});
