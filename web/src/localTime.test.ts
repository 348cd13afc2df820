import { describe, expect, test } from 'vitest';
import { fromLocalInput, localDay, toLocalInput } from './localTime';

describe('form times in the browser time zone', () => {
  test('datetime-local values, both ways', () => {
    const ms = new Date(2026, 0, 5, 9, 30).getTime();
    expect(toLocalInput(ms)).toBe('2026-01-05T09:30');
    expect(fromLocalInput('2026-01-05T09:30')).toBe(ms);
    expect(fromLocalInput('2026-01-05T09:30:15')).toBe(ms + 15_000);
    expect(toLocalInput(undefined)).toBe('');
  });

  test('a bare day is its local midnight; blank and garbage are nothing', () => {
    expect(fromLocalInput('2026-05-01')).toBe(new Date(2026, 4, 1).getTime());
    expect(fromLocalInput('')).toBeUndefined();
    expect(fromLocalInput('nonsense')).toBeUndefined();
    expect(fromLocalInput('yesterday')).toBeUndefined();
  });

  test('localDay gives the local calendar day', () => {
    expect(localDay(new Date(2026, 0, 2, 23, 59).getTime())).toBe('2026-01-02');
  });
});
