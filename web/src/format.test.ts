import { describe, expect, it } from 'vitest';
import { compact, integer, millis, percent, relative, span, usd } from './format';

describe('numbers for people', () => {
  it('compacts in each language', () => {
    expect(compact(1_234_567, 'en')).toBe('1.2M');
    expect(compact(350_000, 'zh-CN')).toBe('35万');
    expect(compact(350_000, 'zh-TW')).toBe('35萬');
    expect(compact(350_000_000, 'zh-CN')).toBe('3.5亿');
    expect(compact(999, 'en')).toBe('999');
  });
  it('shows a dash for missing values', () => {
    expect(compact(null)).toBe('—');
    expect(integer(undefined)).toBe('—');
    expect(percent(Number.NaN)).toBe('—');
  });
  it('formats integers, percentages, latency and cost', () => {
    expect(integer(1234567, 'en')).toBe('1,234,567');
    expect(percent(0.9876, 'en')).toBe('98.8%');
    expect(millis(850, 'en')).toBe('850 ms');
    expect(millis(1234, 'en')).toBe('1.23 s');
    expect(millis(2.5, 'en')).toBe('2.5 ms');
    expect(usd(12.5, 'en')).toBe('$12.50');
    expect(usd(0.0123, 'en')).toBe('$0.0123');
  });
  it('says how long ago', () => {
    const now = Date.UTC(2026, 0, 10);
    expect(relative(now - 3 * 60_000, now, 'en')).toBe('3 minutes ago');
    expect(relative(now + 2 * 86_400_000, now, 'en')).toBe('in 2 days');
    expect(relative(now - 86_400_000, now, 'zh-CN')).toBe('昨天');
  });
});

describe('span', () => {
  it('names a length of time in its largest whole unit', () => {
    expect(span(30, 'en')).toBe('30 seconds');
    expect(span(300, 'en')).toBe('5 minutes');
    expect(span(3600, 'en')).toBe('1 hour');
    expect(span(90, 'en')).toBe('90 seconds');
  });
});
