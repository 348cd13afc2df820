import { afterEach, describe, expect, it, vi } from 'vitest';
import { useState } from 'react';
import { cleanup, render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';

// The API client captures `fetch` when it is created, so the mock is installed before any import.
const fetchMock = vi.hoisted(() => {
  const mock = vi.fn<(input: Request) => Promise<Response>>();
  globalThis.fetch = mock as unknown as typeof fetch;
  return mock;
});

import { ReadingField } from './ReadingField';
import { isCounterName, previewReading } from './model';

describe('previewReading', () => {
  it('adds the difference when the reading is above what was used', () => {
    expect(previewReading(95_012, 350_000)).toEqual({ kind: 'increment', increment: 254_988, usedAfter: 350_000 });
  });

  it('treats a reading below what was used as a reset to the reading', () => {
    expect(previewReading(400_000, 30_000)).toEqual({ kind: 'reset', increment: 30_000, usedAfter: 30_000 });
  });

  it('adds nothing for the same figure', () => {
    expect(previewReading(350_000, 350_000)).toEqual({ kind: 'unchanged', increment: 0, usedAfter: 350_000 });
  });

  it('starts a counter that does not exist yet at the reading', () => {
    expect(previewReading(null, 12_000)).toEqual({ kind: 'first', increment: 12_000, usedAfter: 12_000 });
    expect(previewReading(undefined, 0)).toEqual({ kind: 'first', increment: 0, usedAfter: 0 });
  });

  it('counts a first reading of zero on an empty counter as unchanged, not a reset', () => {
    expect(previewReading(0, 0).kind).toBe('unchanged');
    expect(previewReading(0, 1).kind).toBe('increment');
  });
});

describe('isCounterName', () => {
  it('accepts what the server accepts', () => {
    for (const name of ['default', 'cursor', 'claude-code', 'team_1.v2', '计数器', 'a'.repeat(64)]) {
      expect(isCounterName(name), name).toBe(true);
    }
  });

  it('refuses what the server refuses', () => {
    for (const name of ['', 'parse', 'with space', 'slash/name', 'bang!', 'a'.repeat(65), '计'.repeat(22)]) {
      expect(isCounterName(name), name).toBe(false);
    }
  });
});

function json(status: number, body: unknown) {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

/** A stand-in for `POST /api/v1/counters/parse` that knows a few forms. */
async function fakeParse(input: Request): Promise<Response> {
  expect(new URL(input.url).pathname).toBe('/api/v1/counters/parse');
  expect(input.method).toBe('POST');
  const { text } = (await input.json()) as { text: string };
  const known: Record<string, number> = { '35万': 350_000, '3万': 30_000, '350K': 350_000 };
  if (text in known) return json(200, { tokens: known[text], examples: ['350K'] });
  return json(422, {
    error: {
      code: 'invalid_field',
      field: 'text',
      message: `text: \`${text}\` is not a token count: there is no number in it; type one such as 350000, 350K or 1.2M`,
    },
  });
}

function Harness({ used }: { used: number | null }) {
  const [value, setValue] = useState('');
  return <ReadingField value={value} onChange={setValue} used={used} quota={1_000_000} delay={40} />;
}

describe('ReadingField', () => {
  afterEach(() => {
    cleanup();
    fetchMock.mockReset();
  });

  it('asks the server once, after typing stops, and shows the parsed figure and the increment', async () => {
    fetchMock.mockImplementation(fakeParse);
    render(<Harness used={95_012} />);
    const input = screen.getByLabelText('Reading');
    const feedback = screen.getByTestId('reading-feedback');
    expect(feedback.textContent).toContain('Accepted:');

    await userEvent.type(input, '35万');
    await waitFor(() => expect(feedback.textContent).toContain('Understood as 350,000 tokens'));
    expect(feedback.textContent).toContain('+254,988 on top of the 95,012 used → 350,000');
    expect(feedback.textContent).toContain('35% of the quota');
    // Debounced: one request, for the whole text.
    expect(fetchMock).toHaveBeenCalledTimes(1);
    const sent = fetchMock.mock.calls[0]![0];
    expect(sent.headers.get('Content-Type')).toContain('application/json');
    expect(input.getAttribute('aria-invalid')).toBe('false');
  });

  it('warns that a lower reading counts as a reset', async () => {
    fetchMock.mockImplementation(fakeParse);
    render(<Harness used={400_000} />);
    await userEvent.type(screen.getByLabelText('Reading'), '3万');
    const feedback = screen.getByTestId('reading-feedback');
    await waitFor(() => expect(feedback.textContent).toContain('Understood as 30,000 tokens'));
    expect(feedback.textContent).toContain('this counts as a reset, and used becomes 30,000');
  });

  it('says a first reading creates the counter', async () => {
    fetchMock.mockImplementation(fakeParse);
    render(<Harness used={null} />);
    await userEvent.type(screen.getByLabelText('Reading'), '350K');
    await waitFor(() =>
      expect(screen.getByTestId('reading-feedback').textContent).toContain('First reading: the counter starts at 350,000'),
    );
  });

  it("shows the API's error naming the input and marks the field invalid", async () => {
    fetchMock.mockImplementation(fakeParse);
    render(<Harness used={95_012} />);
    const input = screen.getByLabelText('Reading');
    await userEvent.type(input, 'abc');
    const feedback = screen.getByTestId('reading-feedback');
    await waitFor(() => expect(feedback.textContent).toContain('`abc` is not a token count'));
    // The field prefix of the API message is left out; the input is named.
    expect(feedback.textContent).not.toMatch(/^text:/);
    expect(input.getAttribute('aria-invalid')).toBe('true');
  });

  it('goes back to the hint when the input is cleared, without asking the server', async () => {
    fetchMock.mockImplementation(fakeParse);
    render(<Harness used={0} />);
    const input = screen.getByLabelText('Reading');
    await userEvent.type(input, '350K');
    await waitFor(() => expect(screen.getByTestId('reading-feedback').textContent).toContain('Understood'));
    await userEvent.clear(input);
    expect(screen.getByTestId('reading-feedback').textContent).toContain('Accepted:');
    await new Promise((r) => setTimeout(r, 80));
    expect(fetchMock).toHaveBeenCalledTimes(1);
  });
});
