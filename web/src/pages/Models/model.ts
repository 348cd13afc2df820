// The models page's pure parts: form text ⇄ API bodies, and how a target's health reads.
import type { Schemas } from '../../api/client';

export type TargetView = Schemas['TargetView'];
export type ModelView = Schemas['ModelView'];
export type TargetHealth = Schemas['TargetHealthView'];
export type PoolMember = Schemas['PoolMember'];

export const PROVIDERS = ['openai', 'anthropic', 'azure', 'gemini', 'openai_compatible'] as const;
export const STRATEGIES = ['weighted', 'least_busy'] as const;

/** A comma- or space-separated list, without empties or repeats. */
export function splitList(text: string): string[] {
  return [...new Set(text.split(/[\s,]+/).filter((s) => s !== ''))];
}

/** `a, b=gpt4o-prod` → pool members; `target=upstream` sends another model name to a target. */
export function parsePool(text: string): PoolMember[] {
  return splitList(text).map((item) => {
    const at = item.indexOf('=');
    if (at < 0) return { target: item };
    const upstream = item.slice(at + 1);
    return upstream ? { target: item.slice(0, at), upstream_model: upstream } : { target: item.slice(0, at) };
  });
}

/** The pool as the form shows it. */
export function poolText(pool: readonly PoolMember[]): string {
  return pool.map((m) => (m.upstream_model ? `${m.target}=${m.upstream_model}` : m.target)).join(', ');
}

export type TargetForm = {
  name: string;
  provider: string;
  base_url: string;
  credential: string;
  credential_header: string;
  credential_format: string;
  deployment: string;
  weight: string;
  rpm: string;
};

export function targetFormOf(t: TargetView | null): TargetForm {
  return {
    name: t?.name ?? '',
    provider: t?.provider ?? 'openai',
    base_url: t?.base_url ?? '',
    credential: '',
    credential_header: t?.credential_header.name ?? '',
    credential_format: t?.credential_header.format ?? '',
    deployment: t?.deployment ?? '',
    weight: String(t?.weight ?? 1),
    rpm: t?.rpm ? String(t.rpm) : '',
  };
}

export type TargetErrors = Partial<Record<keyof TargetForm, string>>;

/** What the browser can tell before asking the server (which checks everything again). */
export function validateTarget(f: TargetForm, creating: boolean): TargetErrors {
  const errors: TargetErrors = {};
  if (creating && !/^[A-Za-z0-9._-]{1,64}$/.test(f.name)) errors.name = 'bad_name';
  if (f.base_url && !/^https?:\/\/[^\s/?#]+/.test(f.base_url)) errors.base_url = 'bad_base_url';
  if ((f.provider === 'azure' || f.provider === 'openai_compatible') && !f.base_url && creating)
    errors.base_url = 'base_url_required';
  const weight = Number(f.weight);
  if (!Number.isInteger(weight) || weight < 1 || weight > 1000) errors.weight = 'bad_weight';
  if (f.rpm !== '' && (!Number.isInteger(Number(f.rpm)) || Number(f.rpm) < 1)) errors.rpm = 'bad_rpm';
  if (f.credential_format && !f.credential_format.includes('{key}')) errors.credential_format = 'bad_format';
  return errors;
}

/** The body of `POST /api/v1/targets`. */
export function targetCreate(f: TargetForm): Schemas['TargetCreate'] {
  return {
    name: f.name,
    provider: f.provider as TargetView['provider'],
    ...(f.base_url ? { base_url: f.base_url } : {}),
    ...(f.credential ? { credential: f.credential } : {}),
    ...(f.credential_header ? { credential_header: f.credential_header } : {}),
    ...(f.credential_header && f.credential_format ? { credential_format: f.credential_format } : {}),
    ...(f.deployment ? { deployment: f.deployment } : {}),
    weight: Number(f.weight),
    ...(f.rpm ? { rpm: Number(f.rpm) } : {}),
  };
}

/** The body of `PATCH /api/v1/targets/{id}`: only what changed; a blank credential keeps it. */
export function targetPatch(t: TargetView, f: TargetForm): Schemas['TargetPatch'] {
  const before = targetFormOf(t);
  const patch: Schemas['TargetPatch'] = {};
  if (f.base_url !== before.base_url) patch.base_url = f.base_url;
  if (f.credential) patch.credential = f.credential;
  if (f.credential_header !== before.credential_header || f.credential_format !== before.credential_format) {
    patch.credential_header = f.credential_header || null;
    if (f.credential_header && f.credential_format) patch.credential_format = f.credential_format;
  }
  if (f.deployment !== before.deployment) patch.deployment = f.deployment;
  if (f.weight !== before.weight) patch.weight = Number(f.weight);
  if (f.rpm !== before.rpm) patch.rpm = f.rpm ? Number(f.rpm) : null;
  return patch;
}

export type ModelForm = { name: string; pool: string; aliases: string; fallbacks: string; strategy: string };

export function modelFormOf(m: ModelView | null): ModelForm {
  return {
    name: m?.name ?? '',
    pool: m ? poolText(m.pool) : '',
    aliases: m?.aliases.join(', ') ?? '',
    fallbacks: m?.fallbacks.join(', ') ?? '',
    strategy: m?.strategy ?? 'weighted',
  };
}

export function validateModel(f: ModelForm): Partial<Record<keyof ModelForm, string>> {
  const errors: Partial<Record<keyof ModelForm, string>> = {};
  if (!f.name.trim()) errors.name = 'name_required';
  if (parsePool(f.pool).length === 0) errors.pool = 'pool_required';
  return errors;
}

export function modelBody(f: ModelForm) {
  return {
    pool: parsePool(f.pool),
    aliases: splitList(f.aliases),
    fallbacks: splitList(f.fallbacks),
    strategy: f.strategy as ModelView['strategy'],
  };
}

/** The badge tone of a circuit state. */
export function circuitTone(circuit: TargetHealth['circuit']): 'success' | 'warning' | 'danger' {
  return circuit === 'closed' ? 'success' : circuit === 'half_open' ? 'warning' : 'danger';
}

/** Attempts and errors over the minutes the health covers. */
export function recentTotals(h: TargetHealth): { attempts: number; errors: number } {
  return h.minutes.reduce((sum, m) => ({ attempts: sum.attempts + m.attempts, errors: sum.errors + m.errors }), {
    attempts: 0,
    errors: 0,
  });
}
