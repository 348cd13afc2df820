// One team's open invitations, with copyable links.
import { useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { client, unwrap, type Schemas } from '../../api/client';
import type { Role } from '../../api/vocabulary';
import { date, dateTime, relative } from '../../format';
import { ConfirmDialog, QueryState, useToast } from '../../components/ui';
import { InviteDialog } from './InviteDialog';
import { RoleBadge } from './RoleBadge';
import { ns } from './messages';

export function Invitations({ teamId, teamName, callerRole }: { teamId: number; teamName: string; callerRole: Role | null }) {
  const { t } = useTranslation([ns, 'common']);
  const toast = useToast();
  const queries = useQueryClient();
  const [inviting, setInviting] = useState(false);
  const [withdrawing, setWithdrawing] = useState<Schemas['InvitationView'] | null>(null);
  const invitations = useQuery({
    queryKey: ['team-invitations', teamId],
    queryFn: () => unwrap(client.GET('/api/v1/teams/{id}/invitations', { params: { path: { id: teamId } } })),
  });
  const withdraw = useMutation({
    mutationFn: (inv: Schemas['InvitationView']) =>
      unwrap(
        client.DELETE('/api/v1/teams/{id}/invitations/{invitation_id}', {
          params: { path: { id: teamId, invitation_id: inv.id } },
        }),
      ),
    onSuccess: () => {
      toast(t('withdrawn'));
      setWithdrawing(null);
      void queries.invalidateQueries({ queryKey: ['team-invitations', teamId] });
    },
  });
  const now = Date.now();
  return (
    <section className="card" aria-labelledby="invitations-title">
      <div className="page-header" style={{ marginBottom: '0.5rem' }}>
        <h2 id="invitations-title" style={{ margin: 0 }}>
          {t('invitations')}
        </h2>
        <span className="spacer" />
        <button type="button" className="primary" onClick={() => setInviting(true)}>
          {t('invite')}
        </button>
      </div>
      <p className="muted" style={{ marginTop: 0, fontSize: '0.85rem' }}>
        {t('invitations_help')}
      </p>
      <QueryState
        query={invitations}
        isEmpty={(list) => list.every((i) => i.accepted_at != null)}
        empty={t('no_invitations')}
      >
        {(list) => (
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th>{t('col_email')}</th>
                  <th>{t('col_role')}</th>
                  <th>{t('col_expires')}</th>
                  <th className="hide-narrow">{t('col_created')}</th>
                  <th className="num">{t('col_actions')}</th>
                </tr>
              </thead>
              <tbody>
                {list
                  .filter((i) => i.accepted_at == null)
                  .map((inv) => {
                    const expired = inv.expires_at <= now;
                    return (
                      <tr key={inv.id}>
                        <td className="mono">{inv.email}</td>
                        <td>
                          <RoleBadge role={inv.role} />
                        </td>
                        <td title={dateTime(inv.expires_at)}>
                          {expired ? (
                            <span className="badge warning">{t('expired')}</span>
                          ) : (
                            relative(inv.expires_at, now)
                          )}
                        </td>
                        <td className="hide-narrow" title={dateTime(inv.created_at)}>
                          {date(inv.created_at)}
                        </td>
                        <td>
                          <div className="actions">
                            <button
                              type="button"
                              className="small danger"
                              aria-label={t('withdraw_label', { email: inv.email })}
                              onClick={() => setWithdrawing(inv)}
                            >
                              {t('withdraw')}
                            </button>
                          </div>
                        </td>
                      </tr>
                    );
                  })}
              </tbody>
            </table>
          </div>
        )}
      </QueryState>
      <InviteDialog
        open={inviting}
        onClose={() => setInviting(false)}
        teams={[{ id: teamId, name: teamName, role: callerRole }]}
      />
      <ConfirmDialog
        open={withdrawing !== null}
        title={t('withdraw_title', { email: withdrawing?.email })}
        message={t('withdraw_message')}
        confirmLabel={t('withdraw')}
        busy={withdraw.isPending}
        error={withdraw.error}
        onConfirm={() => withdrawing && withdraw.mutate(withdrawing)}
        onClose={() => {
          withdraw.reset();
          setWithdrawing(null);
        }}
      />
    </section>
  );
}
