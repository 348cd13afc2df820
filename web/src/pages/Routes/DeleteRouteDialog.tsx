// Deleting a route.
import { useQueryClient } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { client, unwrap } from '../../api/client';
import { ConfirmAction, useToast } from '../../components/ui';
import { ns } from './messages';
import type { RouteView } from './model';

export function DeleteRouteDialog({ route, onClose }: { route: RouteView | null; onClose: () => void }) {
  const { t } = useTranslation(ns);
  const queries = useQueryClient();
  const toast = useToast();
  return (
    <ConfirmAction
      target={route}
      title={t('delete_title', { name: route?.name ?? '' })}
      message={t('delete_message', { prefix: route?.prefix ?? '' })}
      confirmLabel={t('delete')}
      run={(r) => unwrap(client.DELETE('/api/v1/routes/{id}', { params: { path: { id: r.id } } }))}
      onDone={(r) => {
        void queries.invalidateQueries({ queryKey: ['routes'] });
        void queries.invalidateQueries({ queryKey: ['keys'] });
        toast(t('deleted', { name: r.name }));
      }}
      onClose={onClose}
    />
  );
}
