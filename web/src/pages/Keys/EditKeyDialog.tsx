// Editing a key's name, description, expiry and allowed routes.
import { useState, type FormEvent } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { ApiError, client, unwrap, type Schemas } from '../../api/client';
import { Dialog, ErrorAlert, Field, FormButtons, focusFirstInvalid, useToast } from '../../components/ui';
import { dateTime } from '../../format';
import { localDay } from '../../localTime';
import { ExpiryPicker, ModelsField, RoutePicker } from './KeyFormParts';
import { ns } from './messages';
import {
  type ExpiryChoice,
  expiryTimestamp,
  fieldOf,
  type KeyView,
  modelsText,
  parseModels,
  routesFor,
  type RouteView,
} from './model';

export function EditKeyDialog({ keyView, routes, onClose }: { keyView: KeyView; routes: RouteView[]; onClose: () => void }) {
  const { t } = useTranslation([ns, 'common']);
  const queries = useQueryClient();
  const toast = useToast();
  const initialDay = keyView.expires_at ? localDay(keyView.expires_at) : '';
  const [name, setName] = useState(keyView.name);
  const [description, setDescription] = useState(keyView.description);
  const [choice, setChoice] = useState<ExpiryChoice>(keyView.expires_at ? 'date' : 'never');
  const [day, setDay] = useState(initialDay);
  const [restricted, setRestricted] = useState(keyView.route_ids !== null && keyView.route_ids !== undefined);
  const [selected, setSelected] = useState<number[]>(keyView.route_ids ?? []);
  const [models, setModels] = useState(modelsText(keyView.models));
  const [local, setLocal] = useState<Record<string, string>>({});

  const save = useMutation({
    mutationFn: (body: Schemas['KeyPatch']) =>
      unwrap(client.PATCH('/api/v1/keys/{id}', { params: { path: { id: keyView.id } }, body })),
    onSuccess: (updated) => {
      void queries.invalidateQueries({ queryKey: ['keys'] });
      toast(t('saved', { name: updated.name }));
      onClose();
    },
  });
  const serverField = fieldOf(save.error);
  const errorAt = (f: string) => local[f] ?? (serverField === f ? (save.error as ApiError).message : null);

  function submit(e: FormEvent) {
    e.preventDefault();
    const problems: Record<string, string> = {};
    if (!name.trim()) problems.name = t('name_required');
    const body: Schemas['KeyPatch'] = {};
    if (name.trim() !== keyView.name) body.name = name.trim();
    if (description !== keyView.description) body.description = description;
    // The expiry is sent only when it changed (an unchanged date keeps its exact time).
    const expiryUnchanged =
      (choice === 'never' && !keyView.expires_at) || (choice === 'date' && keyView.expires_at && day === initialDay);
    if (!expiryUnchanged) {
      const expires = expiryTimestamp(choice, day, Date.now());
      if (expires === undefined) problems.expiry = t('expiry_future');
      else body.expires_at = expires;
    }
    const ids = selected.filter((id) => routesFor(routes, keyView.team_id).some((r) => r.id === id)).sort((a, b) => a - b);
    if (restricted && ids.length === 0) problems.routes = t('routes_pick');
    const before = keyView.route_ids ? [...keyView.route_ids].sort((a, b) => a - b) : null;
    const after = restricted ? ids : null;
    if (JSON.stringify(before) !== JSON.stringify(after)) body.route_ids = after;
    const patterns = parseModels(models);
    if (patterns === undefined) problems.models = t('models_bad');
    else if (JSON.stringify(patterns) !== JSON.stringify(keyView.models ?? null)) body.models = patterns;
    setLocal(problems);
    if (Object.keys(problems).length > 0) {
      focusFirstInvalid(e.currentTarget as HTMLFormElement);
      return;
    }
    if (Object.keys(body).length === 0) {
      onClose();
      return;
    }
    save.mutate(body);
  }

  return (
    <Dialog
      open
      onClose={onClose}
      title={t('edit_title', { name: keyView.name })}
      footer={
        <FormButtons
          onCancel={onClose}
          label={t('common:save')}
          busy={save.isPending}
          form="edit-key-form"
        />
      }
    >
      <form id="edit-key-form" onSubmit={submit} noValidate>
        {!serverField && <ErrorAlert error={save.error} />}
        <p className="muted">
          <code>{keyView.prefix}</code> · {keyView.team}
        </p>
        <Field label={t('name')} error={errorAt('name')}>
          <input
            value={name}
            maxLength={100}
            required
            aria-invalid={!!errorAt('name') || undefined}
            onChange={(e) => setName(e.target.value)}
          />
        </Field>
        <Field label={t('description')} error={errorAt('description')}>
          <textarea value={description} maxLength={1000} rows={2} onChange={(e) => setDescription(e.target.value)} />
        </Field>
        <ExpiryPicker
          choice={choice}
          day={day}
          onChoice={setChoice}
          onDay={setDay}
          error={errorAt('expiry')}
          current={keyView.expires_at ? t('expiry_at', { when: dateTime(keyView.expires_at) }) : undefined}
        />
        <RoutePicker
          routes={routes}
          teamId={keyView.team_id}
          restricted={restricted}
          selected={selected}
          onRestricted={setRestricted}
          onSelected={setSelected}
          error={errorAt('routes')}
        />
        <ModelsField value={models} onChange={setModels} error={errorAt('models')} />
      </form>
    </Dialog>
  );
}
