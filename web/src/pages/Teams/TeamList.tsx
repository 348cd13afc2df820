// /teams: every team the caller can see, with member counts and the caller's role.
import { useState } from 'react';
import { Link, useNavigate } from 'react-router';
import { useQueries } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import type { Schemas } from '../../api/client';
import { teamMembersQuery, useTeams } from '../../api/queries';
import { useAuth, usePermissions } from '../../auth';
import { isRole } from '../../api/vocabulary';
import { date, dateTime, integer } from '../../format';
import { QueryState, useToast } from '../../components/ui';
import { RoleBadge } from './RoleBadge';
import { DeleteTeamDialog, TeamNameDialog, useTeamMutations } from './TeamDialogs';
import { ns } from './messages';

export function TeamList() {
  const { t } = useTranslation([ns, 'common']);
  const can = usePermissions();
  const { session } = useAuth();
  const toast = useToast();
  const navigate = useNavigate();
  const mutations = useTeamMutations();
  const [creating, setCreating] = useState(false);
  const [renaming, setRenaming] = useState<Schemas['TeamView'] | null>(null);
  const [deleting, setDeleting] = useState<Schemas['TeamView'] | null>(null);
  const teams = useTeams();
  const counts = useQueries({ queries: (teams.data ?? []).map((x) => teamMembersQuery(x.id)) });
  const ownRole = (id: number) => session?.memberships.find((m) => m.team_id === id)?.role ?? null;

  return (
    <>
      <div className="page-header">
        <h1>{t('title')}</h1>
        <span className="spacer" />
        {can.isAdmin && (
          <button type="button" className="primary" onClick={() => setCreating(true)}>
            {t('create_team')}
          </button>
        )}
      </div>
      <p className="muted" style={{ marginTop: 0 }}>
        {t('intro')}
      </p>
      <QueryState query={teams} empty={t('no_teams')}>
        {(list) => {
          const anyActions = list.some((x) => x.role === 'owner' || x.role === 'admin');
          return (
            <div className="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th>{t('col_team')}</th>
                    <th>{t('col_your_role')}</th>
                    <th className="num">{t('col_members')}</th>
                    <th className="hide-narrow">{t('col_created')}</th>
                    {anyActions && <th className="num">{t('col_actions')}</th>}
                  </tr>
                </thead>
                <tbody>
                  {list.map((team, i) => {
                    const role = isRole(team.role) ? team.role : null;
                    const mine = ownRole(team.id);
                    const count = counts[i]?.data?.length;
                  const countFailed = counts[i]?.isError ?? false;
                    return (
                      <tr key={team.id}>
                        <td>
                          <Link to={`/teams/${team.id}`}>
                            <strong>{team.name}</strong>
                          </Link>
                        </td>
                        <td>
                          <div className="row" style={{ gap: '0.3rem' }}>
                            {mine && <RoleBadge role={mine} />}
                            {can.isAdmin && <span className="badge">{t('instance_admin')}</span>}
                          </div>
                        </td>
                        <td className="num">{count !== undefined ? integer(count) : countFailed ? '—' : '…'}</td>
                        <td className="hide-narrow" title={dateTime(team.created_at)}>
                          {date(team.created_at)}
                        </td>
                        {anyActions && (
                          <td>
                            <div className="actions">
                              {(role === 'owner' || role === 'admin') && (
                                <button
                                  type="button"
                                  className="small"
                                  aria-label={`${t('rename')} ${team.name}`}
                                  onClick={() => setRenaming(team)}
                                >
                                  {t('rename')}
                                </button>
                              )}
                              {role === 'owner' && (
                                <button
                                  type="button"
                                  className="small danger"
                                  aria-label={`${t('common:delete')} ${team.name}`}
                                  onClick={() => setDeleting(team)}
                                >
                                  {t('common:delete')}
                                </button>
                              )}
                            </div>
                          </td>
                        )}
                      </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
          );
        }}
      </QueryState>
      <TeamNameDialog
        open={creating}
        title={t('create_title')}
        initial=""
        submitLabel={t('create_team')}
        onClose={() => setCreating(false)}
        onSubmit={async (name) => {
          const team = await mutations.create(name);
          toast(t('created', { name: team.name }));
          navigate(`/teams/${team.id}`);
        }}
      />
      <TeamNameDialog
        open={renaming !== null}
        title={t('rename_title')}
        initial={renaming?.name ?? ''}
        submitLabel={t('rename')}
        onClose={() => setRenaming(null)}
        onSubmit={async (name) => {
          if (!renaming) return;
          const team = await mutations.rename(renaming.id, name);
          toast(t('renamed', { name: team.name }));
        }}
      />
      <DeleteTeamDialog team={deleting} onClose={() => setDeleting(null)} onDeleted={() => setDeleting(null)} />
    </>
  );
}
