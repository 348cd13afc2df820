import { describe, expect, it } from 'vitest';
import type { Schemas } from '../api/client';
import { actorName, expiryTone, overviewOf } from './Dashboard';

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

  it('derives the overview figures from the key, route and team lists', () => {
    const key = (id: number, team_id: number, extra: Partial<Schemas['KeyView']> = {}): Schemas['KeyView'] => ({
      id,
      team_id,
      team: team_id === 1 ? 'beta' : 'alpha',
      name: `k${id}`,
      prefix: 'tg_…',
      description: '',
      created_at: NOW - 10 * DAY,
      created_by: null,
      expires_at: null,
      revoked_at: null,
      last_used: 'never used',
      last_used_at: null,
      revealable: false,
      route_ids: null,
      status: 'active',
      ...extra,
    });
    const keys = [
      key(1, 1, { created_at: NOW - 1000 }),
      key(2, 1, { expires_at: NOW + 20 * DAY }),
      key(3, 2, { expires_at: NOW + 2 * DAY, created_at: NOW - 6 * DAY }),
      key(4, 2, { expires_at: NOW - 1 }),
      key(5, 2, { revoked_at: NOW - DAY, expires_at: NOW + DAY }),
      key(6, 2, { expires_at: NOW + 40 * DAY }),
    ];
    const teams: Schemas['TeamView'][] = [
      { id: 1, name: 'beta', created_at: 0, role: 'owner' },
      { id: 2, name: 'alpha', created_at: 0, role: 'owner' },
      { id: 3, name: 'empty', created_at: 0, role: 'owner' },
    ];
    const o = overviewOf(keys, [], teams, [], NOW);
    expect(o.total_keys).toBe(6);
    expect(o.active_keys).toBe(4);
    expect(o.total_routes).toBe(0);
    expect(o.total_teams).toBe(3);
    expect(o.expiring_keys.map((k) => k.id)).toEqual([3, 2]);
    expect(o.expiring_soon).toBe(2);
    const today = NOW - (NOW % DAY);
    expect(o.key_creation_trend.map((d) => d.ts)).toEqual([6, 5, 4, 3, 2, 1, 0].map((d) => today - d * DAY));
    expect(o.key_creation_trend.map((d) => d.count)).toEqual([1, 0, 0, 0, 0, 0, 1]);
    expect(o.team_key_distribution).toEqual([
      { team_id: 2, team: 'alpha', keys: 4 },
      { team_id: 1, team: 'beta', keys: 2 },
    ]);
  });
});
