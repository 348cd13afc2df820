import { describe, expect, test } from 'vitest';
import { priceError } from './Prices';

describe('price form', () => {
  test('a price is a number from 0 to 100000; optional ones may be blank', () => {
    expect(priceError('2.5', false)).toBeNull();
    expect(priceError('0', false)).toBeNull();
    expect(priceError('100000', false)).toBeNull();
    expect(priceError('', false)).toBe('price_required');
    expect(priceError('  ', true)).toBeNull();
    expect(priceError('-1', false)).toBe('price_invalid');
    expect(priceError('100001', true)).toBe('price_invalid');
    expect(priceError('abc', true)).toBe('price_invalid');
    expect(priceError('NaN', false)).toBe('price_invalid');
  });
});
