import { describe, expect, it } from 'vitest';
import { parseTokens } from './Settings';

describe('parseTokens (the quota box)', () => {
  it('accepts whole numbers with thousands separators', () => {
    expect(parseTokens('1000000')).toBe(1_000_000);
    expect(parseTokens('1,000,000')).toBe(1_000_000);
    expect(parseTokens(' 2 500 000 ')).toBe(2_500_000);
    expect(parseTokens('50_000')).toBe(50_000);
    expect(parseTokens('1')).toBe(1);
  });

  it('refuses zero, negatives, fractions, words and numbers past 2^53', () => {
    expect(parseTokens('')).toBeNull();
    expect(parseTokens('0')).toBeNull();
    expect(parseTokens('-5')).toBeNull();
    expect(parseTokens('1.5')).toBeNull();
    expect(parseTokens('1M')).toBeNull();
    expect(parseTokens('lots')).toBeNull();
    expect(parseTokens('99999999999999999999')).toBeNull();
  });
});
