// The route form: from a route, its checks (the server's), the patch it sends; who may manage. Pure.
import { ApiError, type Schemas } from '../../api/client';
import type { Permissions } from '../../auth';
import type { RouteKind } from '../../api/vocabulary';

export type RouteView = Schemas['RouteView'];

// ---------------------------------------------------------------------------------------------
// Pure helpers

export interface RouteForm {
  /** '' for shared. */
  team: string;
  name: string;
  prefix: string;
  upstream_url: string;
  kind: RouteKind;
  strip_prefix: boolean;
  enabled: boolean;
  connect_timeout_ms: string;
  timeout_ms: string;
  /** keep | set | remove */
  credential: 'keep' | 'set' | 'remove';
  upstream_key: string;
}

export function formOf(route: RouteView | null, defaultTeam: string): RouteForm {
  return {
    team: route ? (route.team_id ? String(route.team_id) : '') : defaultTeam,
    name: route?.name ?? '',
    prefix: route?.prefix ?? '',
    upstream_url: route?.upstream_url ?? '',
    kind: route?.kind ?? 'http',
    strip_prefix: route?.strip_prefix ?? true,
    enabled: route?.enabled ?? true,
    connect_timeout_ms: String(route?.connect_timeout_ms ?? 5000),
    timeout_ms: String(route?.timeout_ms ?? 300000),
    credential: route?.has_credential ? 'keep' : 'set',
    upstream_key: '',
  };
}

export type RouteErrors = Partial<
  Record<keyof RouteForm, 'bad_name' | 'bad_prefix' | 'bad_upstream' | 'bad_timeout' | 'bad_credential'>
>;

/**
 * The same checks as the server, so that mistakes show at the field before a round trip.
 * `replacing`: a stored credential is being replaced, so the new one may not be empty.
 */
export function validateRoute(f: RouteForm, replacing = false): RouteErrors {
  const errors: RouteErrors = {};
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(f.name)) errors.name = 'bad_name';
  const p = f.prefix;
  if (
    !p.startsWith('/') ||
    (p.length > 1 && p.endsWith('/')) ||
    /[?# ]/.test(p) ||
    p.split('/').some((s) => s === '.' || s === '..') ||
    p.length > 256
  )
    errors.prefix = 'bad_prefix';
  const m = /^https?:\/\/([^/]*)/.exec(f.upstream_url);
  if (!m || !m[1] || /[@ ]/.test(m[1]) || /[?#]/.test(f.upstream_url)) errors.upstream_url = 'bad_upstream';
  for (const k of ['connect_timeout_ms', 'timeout_ms'] as const) {
    const n = Number(f[k]);
    if (!/^\d+$/.test(f[k]) || n < 1 || n > 3_600_000) errors[k] = 'bad_timeout';
  }
  if (f.credential === 'set' && (f.upstream_key.length > 4096 || (replacing && !f.upstream_key)))
    errors.upstream_key = 'bad_credential';
  return errors;
}

/** The PATCH body: only what changed. */
export function routePatch(before: RouteView, f: RouteForm): Schemas['RoutePatch'] {
  const body: Schemas['RoutePatch'] = {};
  if (f.name !== before.name) body.name = f.name;
  if (f.prefix !== before.prefix) body.prefix = f.prefix;
  if (f.upstream_url !== before.upstream_url) body.upstream_url = f.upstream_url;
  if (f.kind !== before.kind) body.kind = f.kind;
  if (f.strip_prefix !== before.strip_prefix) body.strip_prefix = f.strip_prefix;
  if (f.enabled !== before.enabled) body.enabled = f.enabled;
  if (Number(f.connect_timeout_ms) !== before.connect_timeout_ms) body.connect_timeout_ms = Number(f.connect_timeout_ms);
  if (Number(f.timeout_ms) !== before.timeout_ms) body.timeout_ms = Number(f.timeout_ms);
  if (f.credential === 'set' && f.upstream_key) body.upstream_key = f.upstream_key;
  if (f.credential === 'remove' && before.has_credential) body.upstream_key = null;
  return body;
}

/** Who may change a route: owners/admins of its team; instance admins for shared ones. */
export function mayManageRoute(can: Permissions, route: Pick<RouteView, 'team_id'>): boolean {
  return route.team_id === null || route.team_id === undefined ? can.isAdmin : can.canManage(route.team_id);
}

export function fieldOf(error: unknown): string | null {
  if (!(error instanceof ApiError)) return null;
  if (error.code === 'no_master_key') return 'upstream_key';
  if (error.field === 'team_id') return 'team';
  return error.field ?? null;
}
