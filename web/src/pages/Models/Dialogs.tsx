// Adding, editing and deleting targets and models (instance admins). The credential is
// write-only: the form never holds the stored one, a blank field keeps it.
import { useState, type FormEvent } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { ApiError, client, unwrap } from '../../api/client';
import { ConfirmAction, Dialog, ErrorAlert, Field, FormButtons, focusFirstInvalid, useToast } from '../../components/ui';
import { ns } from './messages';
import {
  PROVIDERS,
  STRATEGIES,
  type ModelForm,
  type ModelView,
  type TargetForm,
  type TargetView,
  modelBody,
  modelFormOf,
  targetCreate,
  targetFormOf,
  targetPatch,
  validateModel,
  validateTarget,
} from './model';

function serverField(error: unknown): string | null {
  return error instanceof ApiError ? (error.field ?? null) : null;
}

export function TargetDialog({ target, onClose }: { target: TargetView | null; onClose: () => void }) {
  const { t } = useTranslation([ns, 'common']);
  const queries = useQueryClient();
  const toast = useToast();
  const [form, setForm] = useState<TargetForm>(() => targetFormOf(target));
  const [checked, setChecked] = useState(false);
  const set = <K extends keyof TargetForm>(k: K, v: TargetForm[K]) => setForm((f) => ({ ...f, [k]: v }));
  const save = useMutation({
    mutationFn: (f: TargetForm) =>
      target
        ? unwrap(client.PATCH('/api/v1/targets/{id}', { params: { path: { id: target.id } }, body: targetPatch(target, f) }))
        : unwrap(client.POST('/api/v1/targets', { body: targetCreate(f) })),
    onSuccess: (saved) => {
      void queries.invalidateQueries({ queryKey: ['targets'] });
      toast(t(target ? 'saved' : 'created', { name: saved.name }));
      onClose();
    },
  });
  const local = checked ? validateTarget(form, !target) : {};
  const field = serverField(save.error);
  const errorAt = (k: keyof TargetForm) => {
    const code = local[k];
    if (code) return t(code);
    return field === k ? (save.error as ApiError).message : null;
  };
  function submit(e: FormEvent) {
    e.preventDefault();
    setChecked(true);
    if (Object.keys(validateTarget(form, !target)).length > 0) {
      focusFirstInvalid(e.currentTarget as HTMLFormElement);
      return;
    }
    if (target && Object.keys(targetPatch(target, form)).length === 0) {
      onClose();
      return;
    }
    save.mutate(form);
  }
  return (
    <Dialog
      open
      onClose={onClose}
      title={target ? t('target_edit_title', { name: target.name }) : t('target_create_title')}
      footer={
        <FormButtons
          onCancel={onClose}
          label={target ? t('common:save') : t('common:create')}
          busy={save.isPending}
          form="target-form"
        />
      }
    >
      <form id="target-form" onSubmit={submit} noValidate>
        {!field && <ErrorAlert error={save.error} />}
        <Field label={t('name')} error={errorAt('name')}>
          <input
            value={form.name}
            maxLength={64}
            required
            autoFocus={!target}
            disabled={!!target}
            spellCheck={false}
            onChange={(e) => set('name', e.target.value)}
          />
        </Field>
        <Field label={t('provider')} error={errorAt('provider')}>
          <select value={form.provider} disabled={!!target} onChange={(e) => set('provider', e.target.value)}>
            {PROVIDERS.map((p) => (
              <option key={p} value={p}>
                {p}
              </option>
            ))}
          </select>
        </Field>
        <Field label={t('base_url')} help={t('base_url_help')} error={errorAt('base_url')}>
          <input
            value={form.base_url}
            type="url"
            spellCheck={false}
            onChange={(e) => set('base_url', e.target.value)}
          />
        </Field>
        <Field
          label={t('credential')}
          help={target?.has_credential ? t('credential_help_keep') : t('credential_help_new')}
          error={errorAt('credential')}
        >
          <input
            value={form.credential}
            type="password"
            autoComplete="new-password"
            spellCheck={false}
            onChange={(e) => set('credential', e.target.value)}
          />
        </Field>
        <Field label={t('credential_header')} help={t('credential_header_help')} error={errorAt('credential_header')}>
          <input
            value={form.credential_header}
            spellCheck={false}
            onChange={(e) => set('credential_header', e.target.value)}
          />
        </Field>
        <Field label={t('credential_format')} help={t('credential_format_help')} error={errorAt('credential_format')}>
          <input
            value={form.credential_format}
            spellCheck={false}
            onChange={(e) => set('credential_format', e.target.value)}
          />
        </Field>
        {form.provider === 'azure' && (
          <Field label={t('deployment')} error={errorAt('deployment')}>
            <input value={form.deployment} spellCheck={false} onChange={(e) => set('deployment', e.target.value)} />
          </Field>
        )}
        <Field label={t('weight')} help={t('weight_help')} error={errorAt('weight')}>
          <input value={form.weight} inputMode="numeric" onChange={(e) => set('weight', e.target.value)} />
        </Field>
        <Field label={t('rpm')} help={t('rpm_help')} error={errorAt('rpm')}>
          <input value={form.rpm} inputMode="numeric" onChange={(e) => set('rpm', e.target.value)} />
        </Field>
      </form>
    </Dialog>
  );
}

export function ModelDialog({ model, onClose }: { model: ModelView | null; onClose: () => void }) {
  const { t } = useTranslation([ns, 'common']);
  const queries = useQueryClient();
  const toast = useToast();
  const [form, setForm] = useState<ModelForm>(() => modelFormOf(model));
  const [checked, setChecked] = useState(false);
  const set = <K extends keyof ModelForm>(k: K, v: ModelForm[K]) => setForm((f) => ({ ...f, [k]: v }));
  const save = useMutation({
    mutationFn: (f: ModelForm) =>
      model
        ? unwrap(client.PATCH('/api/v1/models/{id}', { params: { path: { id: model.id } }, body: modelBody(f) }))
        : unwrap(client.POST('/api/v1/models', { body: { name: f.name.trim(), ...modelBody(f) } })),
    onSuccess: (saved) => {
      void queries.invalidateQueries({ queryKey: ['models'] });
      toast(t(model ? 'saved' : 'created', { name: saved.name }));
      onClose();
    },
  });
  const local = checked ? validateModel(form) : {};
  const field = serverField(save.error);
  const errorAt = (k: keyof ModelForm) => {
    const code = local[k];
    if (code) return t(code);
    // The server names pool entries `pool[0].target` and the like.
    return field && (field === k || field.startsWith(`${k}[`)) ? (save.error as ApiError).message : null;
  };
  function submit(e: FormEvent) {
    e.preventDefault();
    setChecked(true);
    if (Object.keys(validateModel(form)).length > 0) {
      focusFirstInvalid(e.currentTarget as HTMLFormElement);
      return;
    }
    save.mutate(form);
  }
  return (
    <Dialog
      open
      onClose={onClose}
      title={model ? t('model_edit_title', { name: model.name }) : t('model_create_title')}
      footer={
        <FormButtons
          onCancel={onClose}
          label={model ? t('common:save') : t('common:create')}
          busy={save.isPending}
          form="model-form"
        />
      }
    >
      <form id="model-form" onSubmit={submit} noValidate>
        {!(field && ['name', 'pool', 'aliases', 'fallbacks', 'strategy'].some((k) => field === k || field.startsWith(`${k}[`))) && (
          <ErrorAlert error={save.error} />
        )}
        <Field label={t('model_name')} help={t('model_name_help')} error={errorAt('name')}>
          <input
            value={form.name}
            required
            autoFocus={!model}
            disabled={!!model}
            spellCheck={false}
            onChange={(e) => set('name', e.target.value)}
          />
        </Field>
        <Field label={t('pool')} help={t('pool_help')} error={errorAt('pool')}>
          <input value={form.pool} required spellCheck={false} onChange={(e) => set('pool', e.target.value)} />
        </Field>
        <Field label={t('aliases')} help={t('aliases_help')} error={errorAt('aliases')}>
          <input value={form.aliases} spellCheck={false} onChange={(e) => set('aliases', e.target.value)} />
        </Field>
        <Field label={t('fallbacks')} help={t('fallbacks_help')} error={errorAt('fallbacks')}>
          <input value={form.fallbacks} spellCheck={false} onChange={(e) => set('fallbacks', e.target.value)} />
        </Field>
        <Field label={t('strategy')} error={errorAt('strategy')}>
          <select value={form.strategy} onChange={(e) => set('strategy', e.target.value)}>
            {STRATEGIES.map((s) => (
              <option key={s} value={s}>
                {t(`strategy_${s}`)}
              </option>
            ))}
          </select>
        </Field>
      </form>
    </Dialog>
  );
}

export function DeleteTargetDialog({ target, onClose }: { target: TargetView | null; onClose: () => void }) {
  const { t } = useTranslation(ns);
  const queries = useQueryClient();
  const toast = useToast();
  return (
    <ConfirmAction
      target={target}
      title={t('delete_target_title', { name: target?.name ?? '' })}
      message={t('delete_target_message')}
      confirmLabel={t('delete')}
      run={(x) => unwrap(client.DELETE('/api/v1/targets/{id}', { params: { path: { id: x.id } } }))}
      onDone={(x) => {
        void queries.invalidateQueries({ queryKey: ['targets'] });
        toast(t('deleted', { name: x.name }));
      }}
      onClose={onClose}
    />
  );
}

export function DeleteModelDialog({ model, onClose }: { model: ModelView | null; onClose: () => void }) {
  const { t } = useTranslation(ns);
  const queries = useQueryClient();
  const toast = useToast();
  return (
    <ConfirmAction
      target={model}
      title={t('delete_model_title', { name: model?.name ?? '' })}
      message={t('delete_model_message')}
      confirmLabel={t('delete')}
      run={(x) => unwrap(client.DELETE('/api/v1/models/{id}', { params: { path: { id: x.id } } }))}
      onDone={(x) => {
        void queries.invalidateQueries({ queryKey: ['models'] });
        toast(t('deleted', { name: x.name }));
      }}
      onClose={onClose}
    />
  );
}
