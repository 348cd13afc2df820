// Who is signed in, and what they may do. The server checks every request; this only decides
// what the console offers, so that nobody is shown a button that would be refused.
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { client, onUnauthorized, setCsrfToken, unwrap, type Schemas } from './api/client';
import { isRole, ROLE_RANK, type Role } from './api/vocabulary';

export type { Role };
export type Session = Schemas['SessionView'];

export interface Auth {
  /** `undefined` while the first check runs, `null` when signed out. */
  session: Session | null | undefined;
  signIn(email: string, password: string): Promise<void>;
  signOut(): Promise<void>;
  refresh(): Promise<void>;
}

const AuthContext = createContext<Auth | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const queries = useQueryClient();

  const refresh = useCallback(async () => {
    try {
      const me = await unwrap(client.GET('/api/v1/auth/me'));
      setCsrfToken(me.csrf_token);
      setSession(me);
    } catch {
      setCsrfToken(null);
      setSession(null);
    }
  }, []);

  useEffect(() => {
    void refresh();
    return onUnauthorized(() => {
      setCsrfToken(null);
      setSession(null);
      queries.clear();
    });
  }, [refresh, queries]);

  const signIn = useCallback(
    async (email: string, password: string) => {
      await unwrap(client.POST('/api/v1/auth/login', { body: { email, password } }));
      await refresh();
    },
    [refresh],
  );

  const signOut = useCallback(async () => {
    try {
      await unwrap(client.POST('/api/v1/auth/logout'));
    } finally {
      setCsrfToken(null);
      setSession(null);
      queries.clear();
    }
  }, [queries]);

  const value = useMemo(() => ({ session, signIn, signOut, refresh }), [session, signIn, signOut, refresh]);
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): Auth {
  const auth = useContext(AuthContext);
  if (!auth) throw new Error('useAuth outside AuthProvider');
  return auth;
}

/** What the signed-in user may do, derived from their instance role and team roles. */
export interface Permissions {
  isAdmin: boolean;
  userId: number;
  /** The user's role in a team (instance admins act as owners everywhere). */
  roleIn(teamId: number): Role | null;
  /** Owners and admins of the team (and instance admins): keys, routes, members. */
  canManage(teamId: number): boolean;
  /** Members and above: may create keys in the team. */
  canCreateKeys(teamId: number): boolean;
  /** Teams where the user may create keys. */
  keyTeams: { id: number; name: string }[];
  /** Teams the user manages. */
  managedTeams: { id: number; name: string }[];
  /** Whether the user manages any team (or is an instance admin). */
  managesAny: boolean;
}

export function permissionsOf(session: Session): Permissions {
  const isAdmin = session.user.is_admin;
  const roles = new Map<number, Role>();
  const names = new Map<number, string>();
  for (const m of session.memberships) {
    if (isRole(m.role)) roles.set(m.team_id, m.role);
    names.set(m.team_id, m.team_name);
  }
  const roleIn = (teamId: number): Role | null => (isAdmin ? 'owner' : (roles.get(teamId) ?? null));
  const atLeast = (teamId: number, role: Role) => {
    const r = roleIn(teamId);
    return r !== null && ROLE_RANK[r] >= ROLE_RANK[role];
  };
  const teams = [...names.entries()].map(([id, name]) => ({ id, name }));
  const managedTeams = teams.filter((t) => atLeast(t.id, 'admin'));
  return {
    isAdmin,
    userId: session.user.id,
    roleIn,
    canManage: (t) => atLeast(t, 'admin'),
    canCreateKeys: (t) => atLeast(t, 'member'),
    keyTeams: teams.filter((t) => atLeast(t.id, 'member')),
    managedTeams,
    managesAny: isAdmin || managedTeams.length > 0,
  };
}

/** The signed-in user's permissions; only call it inside the signed-in part of the app. */
export function usePermissions(): Permissions {
  const { session } = useAuth();
  if (!session) throw new Error('usePermissions while signed out');
  return useMemo(() => permissionsOf(session), [session]);
}
