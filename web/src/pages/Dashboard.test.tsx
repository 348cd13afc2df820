import { describe, expect, it } from 'vitest';
import { actorName, expiryTone } from './Dashboard';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 10, 23, 12);

describe('dashboard helpers', () => {
  it('shows users by e-mail and other actors as they are', () => {
    expect(actorName('user:ann@example.com')).toBe('ann@example.com');
    expect(actorName('system')).toBe('system');
    expect(actorName('cli:unknown')).toBe('cli:unknown');
  });

  it('colours expiries by urgency', () => {
    expect(expiryTone(NOW - 1, NOW)).toBe('danger');
    expect(expiryTone(NOW + 3 * DAY, NOW)).toBe('warning');
    expect(expiryTone(NOW + 7 * DAY, NOW)).toBe('warning');
    expect(expiryTone(NOW + 20 * DAY, NOW)).toBe('info');
    expect(expiryTone(null, NOW)).toBe('info');
  });
});
