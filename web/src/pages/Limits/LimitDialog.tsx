// Adding or editing a limit: scope (fixed when editing), kind with its own fields, hard or soft,
// alert thresholds.
import { useState, type FormEvent } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { client, unwrap, type ApiError } from '../../api/client';
import { ENFORCEMENTS, LIMIT_KIND_TYPES, PERIODS, RATE_PERS, type Scope, type ScopeType } from '../../api/vocabulary';
import { Dialog, ErrorAlert, Field, FormButtons, focusFirstInvalid, useToast } from '../../components/ui';
import { ns } from './messages';
import {
  createBody,
  fieldOf,
  formOf,
  isBudget,
  type LimitErrors,
  type LimitField,
  type LimitForm,
  type LimitView,
  updateBody,
  validateLimit,
} from './model';

export interface ScopeChoices {
  /** The scope types the caller may add limits on. */
  types: ScopeType[];
  teams: { id: number; name: string }[];
  keys: { id: number; name: string; team: string }[];
  routes: { id: number; name: string }[];
}

export function LimitDialog({
  limit,
  initialScope,
  choices,
  onClose,
}: {
  /** The limit to edit; null to add one. */
  limit: LimitView | null;
  initialScope?: Scope;
  choices: ScopeChoices;
  onClose: () => void;
}) {
  const { t } = useTranslation([ns, 'common']);
  const queries = useQueryClient();
  const toast = useToast();
  const [form, setForm] = useState<LimitForm>(() => {
    const f = formOf(limit, initialScope);
    // A new limit starts on the first scope the caller may use.
    return !limit && !choices.types.includes(f.scopeType) && choices.types[0] ? { ...f, scopeType: choices.types[0] } : f;
  });
  const [local, setLocal] = useState<LimitErrors>({});
  const set = <K extends keyof LimitForm>(k: K, v: LimitForm[K]) => setForm((f) => ({ ...f, [k]: v }));

  const save = useMutation({
    mutationFn: (f: LimitForm) =>
      limit
        ? unwrap(client.PUT('/api/v1/limits/{id}', { params: { path: { id: limit.id } }, body: updateBody(f) }))
        : unwrap(client.POST('/api/v1/limits', { body: createBody(f) })),
    onSuccess: () => {
      void queries.invalidateQueries({ queryKey: ['limits'] });
      toast(t(limit ? 'saved' : 'created'));
      onClose();
    },
  });
  const serverField = fieldOf(save.error);
  const errorAt = (f: LimitField): string | null =>
    local[f] ? t(local[f]) : serverField === f ? (save.error as ApiError).message : null;

  function submit(e: FormEvent) {
    e.preventDefault();
    const problems = validateLimit(form);
    setLocal(problems);
    if (Object.keys(problems).length > 0) {
      focusFirstInvalid(e.currentTarget as HTMLFormElement);
      return;
    }
    save.mutate(form);
  }

  const targets: { id: number; label: string }[] =
    form.scopeType === 'team'
      ? choices.teams.map((x) => ({ id: x.id, label: x.name }))
      : form.scopeType === 'key'
        ? choices.keys.map((k) => ({ id: k.id, label: `${k.name} (${k.team})` }))
        : form.scopeType === 'route'
          ? choices.routes.map((r) => ({ id: r.id, label: r.name }))
          : [];
  const scopeText = limit ? `${t(`scope_${limit.scope.type}`)} ${limit.scope.type === 'instance' ? '' : limit.scope_name}`.trim() : '';

  return (
    <Dialog
      open
      onClose={onClose}
      title={limit ? t('edit_title', { scope: scopeText }) : t('create_title')}
      footer={
        <FormButtons
          onCancel={onClose}
          label={limit ? t('common:save') : t('common:create')}
          busy={save.isPending}
          form="limit-form"
        />
      }
    >
      <form id="limit-form" onSubmit={submit} noValidate>
        {!serverField && <ErrorAlert error={save.error} />}
        {limit ? (
          <p className="muted">
            {t('field_scope')}: <strong>{scopeText}</strong>
          </p>
        ) : (
          <div className="limits-form-row">
            <Field label={t('field_scope')}>
              <select
                value={form.scopeType}
                onChange={(e) => setForm((f) => ({ ...f, scopeType: e.target.value as ScopeType, scopeId: '' }))}
              >
                {choices.types.map((s) => (
                  <option key={s} value={s}>
                    {t(`scope_${s}`)}
                  </option>
                ))}
              </select>
            </Field>
            {form.scopeType !== 'instance' && (
              <Field label={t(`field_target_${form.scopeType}`)} error={errorAt('scopeId')}>
                <select
                  value={form.scopeId}
                  required
                  aria-invalid={!!errorAt('scopeId') || undefined}
                  onChange={(e) => set('scopeId', e.target.value)}
                >
                  <option value="">{t('choose')}</option>
                  {targets.map((x) => (
                    <option key={x.id} value={x.id}>
                      {x.label}
                    </option>
                  ))}
                </select>
              </Field>
            )}
          </div>
        )}
        <div className="limits-form-row">
          <Field label={t('field_kind')} error={errorAt('kindType')}>
            <select value={form.kindType} onChange={(e) => set('kindType', e.target.value as LimitForm['kindType'])}>
              {LIMIT_KIND_TYPES.map((k) => (
                <option key={k} value={k}>
                  {t(`kind_${k}`)}
                </option>
              ))}
            </select>
          </Field>
          {form.kindType === 'requests' && (
            <Field label={t('field_per')} error={errorAt('per')}>
              <select value={form.per} onChange={(e) => set('per', e.target.value as LimitForm['per'])}>
                {RATE_PERS.map((p) => (
                  <option key={p} value={p}>
                    {t(`per_${p}`)}
                  </option>
                ))}
              </select>
            </Field>
          )}
          {isBudget(form.kindType) && (
            <Field label={t('field_period')} help={t('period_help')} error={errorAt('period')}>
              <select value={form.period} onChange={(e) => set('period', e.target.value as LimitForm['period'])}>
                {PERIODS.map((p) => (
                  <option key={p} value={p}>
                    {t(`period_${p}`)}
                  </option>
                ))}
              </select>
            </Field>
          )}
        </div>
        <Field label={t(form.kindType === 'cost_budget' ? 'field_max_usd' : 'field_max')} error={errorAt('max')}>
          <input
            inputMode={form.kindType === 'cost_budget' ? 'decimal' : 'numeric'}
            value={form.max}
            required
            aria-invalid={!!errorAt('max') || undefined}
            onChange={(e) => set('max', e.target.value)}
          />
        </Field>
        <Field label={t('field_enforcement')} error={errorAt('enforcement')}>
          <select value={form.enforcement} onChange={(e) => set('enforcement', e.target.value as LimitForm['enforcement'])}>
            {ENFORCEMENTS.map((x) => (
              <option key={x} value={x}>
                {t(`enforcement_${x}`)}
              </option>
            ))}
          </select>
        </Field>
        <Field label={t('field_alert_at')} help={t('alert_at_help')} error={errorAt('alertAt')}>
          <input
            value={form.alertAt}
            aria-invalid={!!errorAt('alertAt') || undefined}
            onChange={(e) => set('alertAt', e.target.value)}
          />
        </Field>
        {isBudget(form.kindType) && (
          <Field label={t('field_include_reported')} help={t('include_reported_help')}>
            <input
              type="checkbox"
              checked={form.includeReported}
              onChange={(e) => set('includeReported', e.target.checked)}
            />
          </Field>
        )}
      </form>
    </Dialog>
  );
}
