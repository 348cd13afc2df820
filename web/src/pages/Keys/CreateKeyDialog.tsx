// Creating a key; its secret is shown once, right after.
import { useEffect, useState, type FormEvent } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { ApiError, client, unwrap, type Schemas } from '../../api/client';
import {
  Dialog,
  ErrorAlert,
  Field,
  FormButtons,
  SecretValue,
  TeamOptions,
  focusFirstInvalid,
  useToast,
} from '../../components/ui';
import { ExpiryPicker, ModelsField, RoutePicker } from './KeyFormParts';
import { ns } from './messages';
import { type ExpiryChoice, expiryTimestamp, fieldOf, parseModels, routesFor, type RouteView, type TeamOption } from './model';

export function CreateKeyDialog({
  teams,
  routes,
  defaultTeam,
  onClose,
}: {
  teams: TeamOption[];
  routes: RouteView[];
  defaultTeam?: number;
  onClose: () => void;
}) {
  const { t } = useTranslation([ns, 'common']);
  const queries = useQueryClient();
  const toast = useToast();
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [teamId, setTeamId] = useState<number | undefined>(defaultTeam ?? teams[0]?.id);
  const [choice, setChoice] = useState<ExpiryChoice>('never');
  const [day, setDay] = useState('');
  const [restricted, setRestricted] = useState(false);
  const [selected, setSelected] = useState<number[]>([]);
  const [models, setModels] = useState('');
  const [local, setLocal] = useState<Record<string, string>>({});
  useEffect(() => {
    if (teamId === undefined && teams[0]) setTeamId(teams[0].id);
  }, [teams, teamId]);

  const create = useMutation({
    mutationFn: (body: Schemas['KeyCreate']) => unwrap(client.POST('/api/v1/keys', { body })),
    onSuccess: (created) => {
      void queries.invalidateQueries({ queryKey: ['keys'] });
      toast(t('created', { name: created.name }));
    },
  });
  const created = create.data;
  const serverField = fieldOf(create.error);
  const errorAt = (f: string) => local[f] ?? (serverField === f ? (create.error as ApiError).message : null);

  function submit(e: FormEvent) {
    e.preventDefault();
    const problems: Record<string, string> = {};
    if (!name.trim()) problems.name = t('name_required');
    const expires = expiryTimestamp(choice, day, Date.now());
    if (expires === undefined) problems.expiry = t('expiry_future');
    const ids = selected.filter((id) => routesFor(routes, teamId).some((r) => r.id === id));
    if (restricted && ids.length === 0) problems.routes = t('routes_pick');
    const patterns = parseModels(models);
    if (patterns === undefined) problems.models = t('models_bad');
    setLocal(problems);
    if (Object.keys(problems).length > 0) {
      focusFirstInvalid(e.currentTarget as HTMLFormElement);
      return;
    }
    create.mutate({
      name: name.trim(),
      description,
      ...(teamId !== undefined ? { team_id: teamId } : {}),
      ...(typeof expires === 'number' ? { expires_at: expires } : {}),
      ...(restricted ? { route_ids: ids } : {}),
      ...(patterns ? { models: patterns } : {}),
    });
  }

  return (
    <Dialog
      open
      onClose={onClose}
      title={t('create_title')}
      footer={
        created ? (
          <button type="button" className="primary" onClick={onClose}>
            {t('done')}
          </button>
        ) : (
          <FormButtons
            onCancel={onClose}
            label={t('create')}
            busy={create.isPending}
            busyLabel={t('creating')}
            form="create-key-form"
          />
        )
      }
    >
      {created ? (
        <OneTimeSecret created={created} />
      ) : (
        <form id="create-key-form" onSubmit={submit} noValidate>
          {!serverField && <ErrorAlert error={create.error} />}
          <Field label={t('name')} help={t('name_help')} error={errorAt('name')}>
            <input
              value={name}
              maxLength={100}
              required
              autoFocus
              aria-invalid={!!errorAt('name') || undefined}
              onChange={(e) => setName(e.target.value)}
            />
          </Field>
          <Field label={t('description')} error={errorAt('description')}>
            <textarea value={description} maxLength={1000} rows={2} onChange={(e) => setDescription(e.target.value)} />
          </Field>
          <Field label={t('team')} error={errorAt('team')}>
            <select
              value={teamId ?? ''}
              onChange={(e) => {
                const id = Number(e.target.value);
                setTeamId(id);
                setSelected((ids) => ids.filter((r) => routesFor(routes, id).some((x) => x.id === r)));
              }}
            >
              <TeamOptions teams={teams} />
            </select>
          </Field>
          <ExpiryPicker choice={choice} day={day} onChoice={setChoice} onDay={setDay} error={errorAt('expiry')} />
          <RoutePicker
            routes={routes}
            teamId={teamId}
            restricted={restricted}
            selected={selected}
            onRestricted={setRestricted}
            onSelected={setSelected}
            error={errorAt('routes')}
          />
          <ModelsField value={models} onChange={setModels} error={errorAt('models')} />
        </form>
      )}
    </Dialog>
  );
}

/** The secret of a new key, shown this once, with a copy button. */
export function OneTimeSecret({ created }: { created: Schemas['KeyCreated'] }) {
  const { t } = useTranslation(ns);
  return (
    <div className="stack keys-secret-box">
      <div className="alert success">{t('created', { name: created.name })}</div>
      <div className="alert warning" role="alert">
        <strong>{t('secret_warning')}</strong>
      </div>
      <SecretValue value={created.key} label={t('secret_label')} className="keys-secret" />
      <p className="muted">{t('secret_hint')}</p>
    </div>
  );
}
