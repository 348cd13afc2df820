// Limits: the form and its checks, the request bodies, who may change what, the gauge's tone and
// the words for a limit's kind. Pure, tested.
import { ApiError } from '../../api/client';
import type {
  Enforcement,
  LimitCreate,
  LimitKind,
  LimitKindType,
  LimitUpdate,
  LimitUsage,
  LimitView,
  Period,
  RatePer,
  Scope,
  ScopeType,
} from '../../api/vocabulary';
import type { Permissions } from '../../auth';

export type { LimitUsage, LimitView };

/** The thresholds a limit alerts at when none are given (the server's default). */
export const DEFAULT_ALERT_AT = [80, 100];

/** The largest figure a limit may have (a signed 64-bit counter, kept within JavaScript's exact range). */
const MAX_FIGURE = Number.MAX_SAFE_INTEGER;

export interface LimitForm {
  scopeType: ScopeType;
  /** The team, key or route id ('' for the instance). */
  scopeId: string;
  kindType: LimitKindType;
  per: RatePer;
  period: Period;
  /** The maximum: a count, or US dollars for a cost budget. */
  max: string;
  enforcement: Enforcement;
  /** Thresholds in percent, comma separated. */
  alertAt: string;
  includeReported: boolean;
}

export type LimitField = 'scopeId' | 'max' | 'alertAt' | 'per' | 'period' | 'kindType' | 'enforcement';
export type LimitErrors = Partial<Record<LimitField, 'pick_scope' | 'bad_max' | 'bad_usd' | 'bad_thresholds'>>;

/** The maximum of a kind: a count, or micro-USD for a cost budget. */
export function kindMax(kind: LimitKind): number {
  return kind.type === 'cost_budget' ? kind.max_micro_usd : kind.max;
}

/** Whether a kind is a budget over a period (the others are rates or concurrency). */
export function isBudget(type: LimitKindType): type is 'token_budget' | 'cost_budget' {
  return type === 'token_budget' || type === 'cost_budget';
}

/** The form for a new limit (in `scope` when given) or for editing `limit`. */
export function formOf(limit: LimitView | null, scope?: Scope): LimitForm {
  const s = limit?.scope ?? scope ?? { type: 'instance' };
  const k: LimitKind = limit?.kind ?? { type: 'requests', per: 'minute', max: 60 };
  return {
    scopeType: s.type,
    scopeId: s.type === 'instance' ? '' : String(s.id),
    kindType: k.type,
    per: k.type === 'requests' ? k.per : 'minute',
    period: k.type === 'token_budget' || k.type === 'cost_budget' ? k.period : 'month',
    max: limit ? (k.type === 'cost_budget' ? String(k.max_micro_usd / 1_000_000) : String(k.max)) : '',
    enforcement: limit?.enforcement ?? 'hard',
    alertAt: (limit?.alert_at ?? DEFAULT_ALERT_AT).join(', '),
    includeReported: limit?.include_reported ?? false,
  };
}

/** "50, 80,100" → [50, 80, 100] (sorted, distinct); null when any part is not a whole 1–1000. */
export function parseThresholds(text: string): number[] | null {
  const parts = text
    .split(/[,，\s]+/)
    .map((p) => p.trim())
    .filter(Boolean);
  const values: number[] = [];
  for (const p of parts) {
    if (!/^\d+$/.test(p)) return null;
    const n = Number(p);
    if (n < 1 || n > 1000) return null;
    if (!values.includes(n)) values.push(n);
  }
  return values.sort((a, b) => a - b);
}

/** USD text → micro-USD; null unless a positive amount with at most 6 decimals. */
export function microUsd(text: string): number | null {
  const t = text.trim();
  if (!/^\d+(\.\d{1,6})?$/.test(t)) return null;
  const [whole, frac = ''] = t.split('.');
  const micro = Number(whole) * 1_000_000 + Number(frac.padEnd(6, '0'));
  return micro > 0 && micro <= MAX_FIGURE ? micro : null;
}

/** The same checks as the server, so mistakes show at the field before a round trip. */
export function validateLimit(f: LimitForm): LimitErrors {
  const errors: LimitErrors = {};
  if (f.scopeType !== 'instance' && !/^\d+$/.test(f.scopeId)) errors.scopeId = 'pick_scope';
  if (f.kindType === 'cost_budget') {
    if (microUsd(f.max) === null) errors.max = 'bad_usd';
  } else {
    const n = Number(f.max);
    if (!/^\d+$/.test(f.max.trim()) || n < 1 || n > MAX_FIGURE) errors.max = 'bad_max';
  }
  if (parseThresholds(f.alertAt) === null) errors.alertAt = 'bad_thresholds';
  return errors;
}

/** The kind the form describes (call after `validateLimit` found nothing). */
export function kindOf(f: LimitForm): LimitKind {
  const max = Number(f.max.trim());
  switch (f.kindType) {
    case 'requests':
      return { type: 'requests', per: f.per, max };
    case 'tokens_per_minute':
      return { type: 'tokens_per_minute', max };
    case 'concurrency':
      return { type: 'concurrency', max };
    case 'token_budget':
      return { type: 'token_budget', max, period: f.period };
    case 'cost_budget':
      return { type: 'cost_budget', max_micro_usd: microUsd(f.max) ?? 0, period: f.period };
  }
}

export function scopeOf(f: LimitForm): Scope {
  return f.scopeType === 'instance' ? { type: 'instance' } : { type: f.scopeType, id: Number(f.scopeId) };
}

/** Only budgets count token-counter readings, and only when asked. */
function includeReported(f: LimitForm): boolean {
  return isBudget(f.kindType) && f.includeReported;
}

export function createBody(f: LimitForm): LimitCreate {
  return {
    scope: scopeOf(f),
    kind: kindOf(f),
    enforcement: f.enforcement,
    alert_at: parseThresholds(f.alertAt) ?? [],
    include_reported: includeReported(f),
  };
}

export function updateBody(f: LimitForm): LimitUpdate {
  return {
    kind: kindOf(f),
    enforcement: f.enforcement,
    alert_at: parseThresholds(f.alertAt) ?? [],
    include_reported: includeReported(f),
  };
}

/** The scopes the caller may put limits on: instance admins all; team admins their teams and keys. */
export function creatableScopes(can: Permissions): ScopeType[] {
  if (can.isAdmin) return ['instance', 'team', 'key', 'route'];
  return can.managedTeams.length > 0 ? ['team', 'key'] : [];
}

/**
 * Who may change a limit: instance admins any; a team's owners and admins the team's limits and
 * its keys' (`keyTeam` gives a key's team, undefined when the key is not in view).
 */
export function mayManageLimit(
  can: Permissions,
  scope: Scope,
  keyTeam: (keyId: number) => number | undefined,
): boolean {
  if (can.isAdmin) return true;
  switch (scope.type) {
    case 'team':
      return can.canManage(scope.id);
    case 'key': {
      const team = keyTeam(scope.id);
      return team !== undefined && can.canManage(team);
    }
    default:
      return false;
  }
}

/** How full a limit is, 0–1+ (null without a current use). */
export function ratioOf(usage: LimitUsage | null | undefined): number | null {
  if (!usage) return null;
  return usage.percent / 100;
}

/**
 * The gauge's colour: `danger` at or past the highest threshold (or 100 %), `warning` at or past
 * any lower one, '' below them all.
 */
export function toneOf(percent: number | null | undefined, alertAt: readonly number[]): '' | 'warning' | 'danger' {
  if (percent === null || percent === undefined) return '';
  const thresholds = alertAt.length > 0 ? [...alertAt].sort((a, b) => a - b) : DEFAULT_ALERT_AT;
  const top = Math.min(100, thresholds[thresholds.length - 1]);
  if (percent >= top) return 'danger';
  if (percent >= thresholds[0]) return 'warning';
  return '';
}

/** A stable order: instance, teams, routes, keys, then by name and id. */
export function sortLimits(limits: readonly LimitView[]): LimitView[] {
  const rank: Record<ScopeType, number> = { instance: 0, team: 1, route: 2, key: 3 };
  return [...limits].sort(
    (a, b) =>
      rank[a.scope.type] - rank[b.scope.type] || a.scope_name.localeCompare(b.scope_name) || a.id - b.id,
  );
}

/** The limits on one scope. */
export function limitsOn(limits: readonly LimitView[], scope: Scope): LimitView[] {
  return limits.filter(
    (l) => l.scope.type === scope.type && (scope.type === 'instance' || ('id' in l.scope && 'id' in scope && l.scope.id === scope.id)),
  );
}

/** Translator shape used by `describeKind` (i18next's `t` with the limits namespace). */
export type Translate = (key: string, options?: Record<string, unknown>) => string;

/** A short text for a kind: "60 requests / minute", "1M tokens / month", "$5.00 / day". */
export function describeKind(
  t: Translate,
  kind: LimitKind,
  number: (n: number) => string,
  money: (usd: number) => string,
): string {
  switch (kind.type) {
    case 'requests':
      return t(`kind_requests_${kind.per}`, { max: number(kind.max) });
    case 'tokens_per_minute':
      return t('kind_tpm_value', { max: number(kind.max) });
    case 'concurrency':
      return t('kind_concurrency_value', { max: number(kind.max) });
    case 'token_budget':
      return t(`kind_tokens_${kind.period}`, { max: number(kind.max) });
    case 'cost_budget':
      return t(`kind_cost_${kind.period}`, { max: money(kind.max_micro_usd / 1_000_000) });
  }
}

/** A server error's field, as the form's field name. */
export function fieldOf(error: unknown): LimitField | null {
  if (!(error instanceof ApiError) || !error.field) return null;
  const f = error.field;
  if (f === 'alert_at' || f.startsWith('alert_at')) return 'alertAt';
  if (f.startsWith('scope')) return 'scopeId';
  if (f === 'enforcement') return 'enforcement';
  if (/(^|\.)period$/.test(f)) return 'period';
  if (/(^|\.)per$/.test(f)) return 'per';
  if (/max/.test(f)) return 'max';
  if (f === 'kind' || f === 'kind.type') return 'kindType';
  return null;
}
