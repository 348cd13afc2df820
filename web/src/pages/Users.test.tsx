import { describe, expect, it } from 'vitest';
import type { Schemas } from '../api/client';
import { matchesUser } from './Users';

const user = (over: Partial<Schemas['UserView']>): Schemas['UserView'] => ({
  id: 1,
  email: 'alice@example.com',
  display_name: 'Alice Liddell',
  is_admin: false,
  created_at: 0,
  has_password: true,
  ...over,
});

describe('matchesUser', () => {
  it('searches the e-mail and the display name, ignoring case and spaces around', () => {
    expect(matchesUser(user({}), '', 'all')).toBe(true);
    expect(matchesUser(user({}), 'ALICE@', 'all')).toBe(true);
    expect(matchesUser(user({}), ' liddell ', 'all')).toBe(true);
    expect(matchesUser(user({}), 'bob', 'all')).toBe(false);
  });

  it('filters by status', () => {
    const active = user({});
    const disabled = user({ disabled_at: 5 });
    const invited = user({ has_password: false });
    const admin = user({ is_admin: true });
    expect([active, disabled, invited, admin].map((u) => matchesUser(u, '', 'active'))).toEqual([true, false, false, true]);
    expect([active, disabled, invited, admin].map((u) => matchesUser(u, '', 'disabled'))).toEqual([false, true, false, false]);
    expect([active, disabled, invited, admin].map((u) => matchesUser(u, '', 'pending'))).toEqual([false, false, true, false]);
    expect([active, disabled, invited, admin].map((u) => matchesUser(u, '', 'admins'))).toEqual([false, false, false, true]);
  });
});
