// Creating, renaming and deleting a team.
import { useQueryClient } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { client, unwrap, type Schemas } from '../../api/client';
import { useAuth } from '../../auth';
import { ConfirmAction, Dialog, NameForm, useToast } from '../../components/ui';
import { ns } from './messages';

export function TeamNameDialog({
  open,
  title,
  initial,
  submitLabel,
  onClose,
  onSubmit,
}: {
  open: boolean;
  title: string;
  initial: string;
  submitLabel: string;
  onClose: () => void;
  onSubmit: (name: string) => Promise<unknown>;
}) {
  const { t } = useTranslation(ns);
  return (
    <Dialog open={open} onClose={onClose} title={title}>
      {open && (
        <NameForm
          label={t('name')}
          help={t('name_help')}
          field="name"
          maxLength={64}
          initial={initial}
          submitLabel={submitLabel}
          onClose={onClose}
          onSubmit={onSubmit}
        />
      )}
    </Dialog>
  );
}

/** Rename and delete, shared by the list and the detail page. */
export function useTeamMutations() {
  const queries = useQueryClient();
  const { refresh } = useAuth();
  const after = async () => {
    await queries.invalidateQueries({ queryKey: ['teams'] });
    await queries.invalidateQueries({ queryKey: ['team'] });
    await refresh();
  };
  return {
    create: async (name: string) => {
      const team = await unwrap(client.POST('/api/v1/teams', { body: { name } }));
      await after();
      return team;
    },
    rename: async (id: number, name: string) => {
      const team = await unwrap(client.PATCH('/api/v1/teams/{id}', { params: { path: { id } }, body: { name } }));
      await after();
      return team;
    },
    remove: async (id: number) => {
      await unwrap(client.DELETE('/api/v1/teams/{id}', { params: { path: { id } } }));
      queries.removeQueries({ queryKey: ['team', id] });
      await after();
    },
  };
}

export function DeleteTeamDialog({
  team,
  onClose,
  onDeleted,
}: {
  team: Schemas['TeamView'] | null;
  onClose: () => void;
  onDeleted: () => void;
}) {
  const { t } = useTranslation(ns);
  const toast = useToast();
  const mutations = useTeamMutations();
  return (
    <ConfirmAction
      target={team}
      title={t('delete_title', { name: team?.name })}
      message={t('delete_message')}
      confirmLabel={t('delete_team')}
      run={(doomed) => mutations.remove(doomed.id)}
      onDone={(doomed) => {
        toast(t('deleted', { name: doomed.name }));
        onDeleted();
      }}
      onClose={onClose}
    />
  );
}
