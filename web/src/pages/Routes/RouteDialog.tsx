// Creating and editing a route; the upstream credential can be replaced, never read back.
import { useState, type FormEvent } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { ApiError, client, unwrap } from '../../api/client';
import { ROUTE_KINDS, isRouteKind } from '../../api/vocabulary';
import { Dialog, ErrorAlert, Field, FormButtons, TeamOptions, focusFirstInvalid, useToast } from '../../components/ui';
import { ns } from './messages';
import { fieldOf, formOf, type RouteForm, routePatch, type RouteView, validateRoute } from './model';

export function RouteDialog({
  route,
  teams,
  allowShared,
  teamName,
  masterKey,
  onClose,
}: {
  route: RouteView | null;
  teams: { id: number; name: string }[];
  allowShared: boolean;
  teamName?: string;
  masterKey?: boolean;
  onClose: () => void;
}) {
  const { t } = useTranslation([ns, 'common']);
  const queries = useQueryClient();
  const toast = useToast();
  const [form, setForm] = useState<RouteForm>(() => formOf(route, allowShared ? '' : String(teams[0]?.id ?? '')));
  const [checked, setChecked] = useState(false);
  const set = <K extends keyof RouteForm>(k: K, v: RouteForm[K]) => setForm((f) => ({ ...f, [k]: v }));

  const save = useMutation({
    mutationFn: async (f: RouteForm) => {
      if (route) {
        return unwrap(
          client.PATCH('/api/v1/routes/{id}', { params: { path: { id: route.id } }, body: routePatch(route, f) }),
        );
      }
      return unwrap(
        client.POST('/api/v1/routes', {
          body: {
            ...(f.team ? { team_id: Number(f.team) } : {}),
            name: f.name,
            prefix: f.prefix,
            upstream_url: f.upstream_url,
            kind: f.kind,
            strip_prefix: f.strip_prefix,
            enabled: f.enabled,
            connect_timeout_ms: Number(f.connect_timeout_ms),
            timeout_ms: Number(f.timeout_ms),
            ...(f.upstream_key ? { upstream_key: f.upstream_key } : {}),
          },
        }),
      );
    },
    onSuccess: (saved) => {
      void queries.invalidateQueries({ queryKey: ['routes'] });
      toast(t(route ? 'saved' : 'created', { name: saved.name }));
      onClose();
    },
  });

  const replacing = !!route?.has_credential;
  const local = checked ? validateRoute(form, replacing) : {};
  const serverField = fieldOf(save.error);
  const errorAt = (k: keyof RouteForm): string | null => {
    const code = local[k];
    if (code) return t(code);
    return serverField === k ? (save.error as ApiError).message : null;
  };
  const invalid = (k: keyof RouteForm) => (errorAt(k) ? true : undefined);

  function submit(e: FormEvent) {
    e.preventDefault();
    setChecked(true);
    if (Object.keys(validateRoute(form, replacing)).length > 0) {
      focusFirstInvalid(e.currentTarget as HTMLFormElement);
      return;
    }
    if (route && Object.keys(routePatch(route, form)).length === 0) {
      onClose();
      return;
    }
    save.mutate(form);
  }

  const noMaster = masterKey === false;
  return (
    <Dialog
      open
      onClose={onClose}
      title={route ? t('edit_title', { name: route.name }) : t('create_title')}
      footer={
        <FormButtons
          onCancel={onClose}
          label={route ? t('common:save') : t('common:create')}
          busy={save.isPending}
          form="route-form"
        />
      }
    >
      <form id="route-form" onSubmit={submit} noValidate>
        {!serverField && <ErrorAlert error={save.error} />}
        <Field label={t('name')} help={t('name_help')} error={errorAt('name')}>
          <input
            value={form.name}
            maxLength={64}
            required
            autoFocus
            spellCheck={false}
            aria-invalid={invalid('name')}
            onChange={(e) => set('name', e.target.value)}
          />
        </Field>
        <Field label={t('prefix')} help={t('prefix_help')} error={errorAt('prefix')}>
          <input
            value={form.prefix}
            maxLength={256}
            required
            placeholder="/openai"
            spellCheck={false}
            className="mono"
            aria-invalid={invalid('prefix')}
            onChange={(e) => set('prefix', e.target.value)}
          />
        </Field>
        <Field label={t('upstream')} help={t('upstream_help')} error={errorAt('upstream_url')}>
          <input
            type="url"
            value={form.upstream_url}
            required
            placeholder="https://api.openai.com"
            spellCheck={false}
            className="mono"
            aria-invalid={invalid('upstream_url')}
            onChange={(e) => set('upstream_url', e.target.value)}
          />
        </Field>
        <Field label={t('kind')} error={errorAt('kind')}>
          <select value={form.kind} aria-invalid={invalid('kind')} onChange={(e) => isRouteKind(e.target.value) && set('kind', e.target.value)}>
            {ROUTE_KINDS.map((k) => (
              <option key={k} value={k}>
                {t(`kind_${k}`)}
              </option>
            ))}
          </select>
        </Field>
        {route ? (
          <Field label={t('team')} help={t('team_fixed')}>
            <input value={route.team_id ? (teamName ?? `#${route.team_id}`) : t('team_shared')} readOnly disabled />
          </Field>
        ) : (
          <Field label={t('team')} error={errorAt('team')}>
            <select value={form.team} onChange={(e) => set('team', e.target.value)}>
              {allowShared && <option value="">{t('team_shared')}</option>}
              <TeamOptions teams={teams} />
            </select>
          </Field>
        )}
        <div className="field">
          <label className="row">
            <input
              type="checkbox"
              checked={form.strip_prefix}
              aria-describedby="route-strip-help"
              onChange={(e) => set('strip_prefix', e.target.checked)}
            />
            <span>{t('strip')}</span>
          </label>
          <small className="help" id="route-strip-help">
            {t('strip_help')}
          </small>
        </div>
        <div className="field">
          <label className="row">
            <input
              type="checkbox"
              checked={form.enabled}
              aria-describedby="route-enabled-help"
              onChange={(e) => set('enabled', e.target.checked)}
            />
            <span>{t('enabled')}</span>
          </label>
          <small className="help" id="route-enabled-help">
            {t('enabled_help')}
          </small>
        </div>
        <div className="grid routes-timeouts">
          <Field label={t('connect_timeout')} error={errorAt('connect_timeout_ms')}>
            <input
              type="number"
              inputMode="numeric"
              min={1}
              max={3_600_000}
              value={form.connect_timeout_ms}
              aria-invalid={invalid('connect_timeout_ms')}
              onChange={(e) => set('connect_timeout_ms', e.target.value)}
            />
          </Field>
          <Field label={t('timeout')} help={t('timeout_help')} error={errorAt('timeout_ms')}>
            <input
              type="number"
              inputMode="numeric"
              min={1}
              max={3_600_000}
              value={form.timeout_ms}
              aria-invalid={invalid('timeout_ms')}
              onChange={(e) => set('timeout_ms', e.target.value)}
            />
          </Field>
        </div>
        <fieldset className="routes-credential">
          <legend>
            {t('credential')} <span className="muted">({t('optional')})</span>
          </legend>
          <p className="help muted">{t('credential_help')}</p>
          {noMaster && <p className="alert warning">{t('credential_no_master')}</p>}
          {route?.has_credential && (
            <div className="row routes-credential-modes" role="radiogroup" aria-label={t('credential')}>
              <p className="muted" style={{ width: '100%', margin: 0 }}>
                {t('credential_stored')}
              </p>
              {(['keep', 'set', 'remove'] as const).map((mode) => (
                <label key={mode} className="row">
                  <input
                    type="radio"
                    name="credential-mode"
                    checked={form.credential === mode}
                    onChange={() => set('credential', mode)}
                  />
                  {t(mode === 'keep' ? 'credential_keep' : mode === 'set' ? 'credential_replace' : 'credential_remove')}
                </label>
              ))}
            </div>
          )}
          {form.credential === 'set' && (
            <Field label={t('credential_new')} error={errorAt('upstream_key')}>
              <input
                type="password"
                autoComplete="new-password"
                value={form.upstream_key}
                maxLength={4096}
                disabled={noMaster}
                spellCheck={false}
                aria-invalid={invalid('upstream_key')}
                onChange={(e) => set('upstream_key', e.target.value)}
              />
            </Field>
          )}
          {form.credential !== 'set' && errorAt('upstream_key') && (
            <small className="error" role="alert">
              {errorAt('upstream_key')}
            </small>
          )}
        </fieldset>
      </form>
    </Dialog>
  );
}
