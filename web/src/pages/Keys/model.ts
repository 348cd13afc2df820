// Who may change or reveal a key, expiry choices, the list's search and filters. Pure, tested.
import { ApiError, type Schemas } from '../../api/client';
import type { Permissions } from '../../auth';

export type KeyView = Schemas['KeyView'];
export type RouteView = Schemas['RouteView'];
export type TeamOption = { id: number; name: string };

// ---------------------------------------------------------------------------------------------
// Pure helpers (tested)

export const DAY_MS = 86_400_000;
export const EXPIRY_PRESETS = ['never', '30', '90', '365', 'date'] as const;
export type ExpiryChoice = (typeof EXPIRY_PRESETS)[number];

/**
 * The expiry timestamp (epoch ms) of a choice: `null` for no expiry, `now + N days` for a
 * preset, the end of the chosen day (browser time zone) for a date; `undefined` when the date is
 * missing, invalid or not in the future.
 */
export function expiryTimestamp(choice: ExpiryChoice, day: string, now: number): number | null | undefined {
  switch (choice) {
    case 'never':
      return null;
    case 'date': {
      if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) return undefined;
      const ms = new Date(`${day}T23:59:59.999`).getTime();
      return Number.isNaN(ms) || ms <= now ? undefined : ms;
    }
    default:
      return now + Number(choice) * DAY_MS;
  }
}

/** Who may change (edit, revoke, delete) a key: its team's owners and admins, or the member who made it. */
export function mayChangeKey(can: Permissions, email: string, key: Pick<KeyView, 'team_id' | 'created_by'>): boolean {
  if (can.canManage(key.team_id)) return true;
  return can.roleIn(key.team_id) === 'member' && key.created_by === `user:${email}`;
}

/** Who may reveal a key: owners and admins of its team, when a copy was kept and it still works. */
export function mayRevealKey(can: Permissions, key: Pick<KeyView, 'team_id' | 'revealable' | 'status'>): boolean {
  return key.revealable && key.status !== 'revoked' && can.canManage(key.team_id);
}

/** Client-side filter of the list. */
export function filterKeys(keys: KeyView[], text: string, teamId: number | undefined, status: string): KeyView[] {
  const needle = text.trim().toLowerCase();
  return keys.filter(
    (k) =>
      (!teamId || k.team_id === teamId) &&
      (!status || k.status === status) &&
      (!needle ||
        k.name.toLowerCase().includes(needle) ||
        k.prefix.toLowerCase().includes(needle) ||
        k.description.toLowerCase().includes(needle)),
  );
}

/** Routes a key of `teamId` may be allowed: the team's and the shared ones. */
export function routesFor(routes: RouteView[], teamId: number | undefined): RouteView[] {
  return routes.filter((r) => r.team_id === null || r.team_id === undefined || r.team_id === teamId);
}

export function statusTone(status: string): string {
  return status === 'active' ? 'success' : status === 'expired' ? 'warning' : 'danger';
}

/**
 * The allowed-models text ("gpt-4o*, claude-*") as the API's list: `null` for any model (empty
 * text), `undefined` when a pattern is not acceptable (spaces, over 200 characters, over 50).
 */
export function parseModels(text: string): string[] | null | undefined {
  const patterns = [...new Set(text.split(/[,，\n]/).map((p) => p.trim()).filter(Boolean))];
  if (patterns.length === 0) return null;
  if (patterns.length > 50 || patterns.some((p) => p.length > 200 || /\s/.test(p))) return undefined;
  return patterns;
}

/** A key's allowed models as the form's text. */
export function modelsText(models: readonly string[] | null | undefined): string {
  return (models ?? []).join(', ');
}

/** Field errors of an API error, keyed by our form's field names. */
export function fieldOf(error: unknown): string | null {
  if (!(error instanceof ApiError) || !error.field) return null;
  if (error.field === 'expires_in' || error.field === 'expires_at') return 'expiry';
  if (error.field === 'route_ids') return 'routes';
  if (error.field === 'team_id') return 'team';
  return error.field;
}
