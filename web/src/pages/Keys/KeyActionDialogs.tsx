// Revoking, deleting and revealing a key.
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { client, unwrap } from '../../api/client';
import { ConfirmAction, Dialog, ErrorAlert, SecretValue, useToast } from '../../components/ui';
import { ns } from './messages';
import type { KeyView } from './model';

export function RevokeDialog({ keyView, onClose }: { keyView: KeyView | null; onClose: () => void }) {
  const { t } = useTranslation(ns);
  const queries = useQueryClient();
  const toast = useToast();
  return (
    <ConfirmAction
      target={keyView}
      title={t('revoke_title', { name: keyView?.name ?? '' })}
      message={t('revoke_message')}
      confirmLabel={t('revoke')}
      run={(k) => unwrap(client.POST('/api/v1/keys/{id}/revoke', { params: { path: { id: k.id } } }))}
      onDone={(k) => {
        void queries.invalidateQueries({ queryKey: ['keys'] });
        toast(t('revoked', { name: k.name }));
      }}
      onClose={onClose}
    />
  );
}

export function DeleteDialog({ keyView, onClose }: { keyView: KeyView | null; onClose: () => void }) {
  const { t } = useTranslation(ns);
  const queries = useQueryClient();
  const toast = useToast();
  return (
    <ConfirmAction
      target={keyView}
      title={t('delete_title', { name: keyView?.name ?? '' })}
      message={t('delete_message')}
      confirmLabel={t('delete')}
      run={(k) => unwrap(client.DELETE('/api/v1/keys/{id}', { params: { path: { id: k.id } } }))}
      onDone={(k) => {
        void queries.invalidateQueries({ queryKey: ['keys'] });
        toast(t('deleted', { name: k.name }));
      }}
      onClose={onClose}
    />
  );
}

export function RevealDialog({ keyView, onClose }: { keyView: KeyView; onClose: () => void }) {
  const { t } = useTranslation([ns, 'common']);
  const reveal = useMutation({
    mutationFn: () => unwrap(client.POST('/api/v1/keys/{id}/reveal', { params: { path: { id: keyView.id } } })),
  });
  return (
    <Dialog
      open
      onClose={onClose}
      title={t('reveal_title', { name: keyView.name })}
      footer={
        reveal.data ? (
          <button type="button" className="primary" onClick={onClose}>
            {t('done')}
          </button>
        ) : (
          <>
            <button type="button" onClick={onClose}>
              {t('common:cancel')}
            </button>
            <button type="button" className="primary" onClick={() => reveal.mutate()} disabled={reveal.isPending}>
              {reveal.isPending ? t('revealing') : t('reveal_button')}
            </button>
          </>
        )
      }
    >
      <ErrorAlert error={reveal.error} />
      {reveal.data ? (
        <div className="stack">
          <SecretValue value={reveal.data.key} label={t('revealed_label')} className="keys-secret" />
          <p className="muted">{t('revealed_note')}</p>
        </div>
      ) : (
        <p>
          <code>{keyView.prefix}</code> · {keyView.team}
          <br />
          {t('reveal_message')}
        </p>
      )}
    </Dialog>
  );
}
