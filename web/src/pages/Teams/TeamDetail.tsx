// /teams/:id: one team, with its members and invitations, rename and delete.
import { useState } from 'react';
import { Link, useNavigate } from 'react-router';
import { useQuery } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { client, unwrap, ApiError } from '../../api/client';
import { useAuth, usePermissions } from '../../auth';
import { isRole } from '../../api/vocabulary';
import { LimitBadges } from '../../components/LimitBadges';
import { Empty, ErrorState, Loading, useToast } from '../../components/ui';
import { Invitations } from './Invitations';
import { Members } from './Members';
import { RoleBadge } from './RoleBadge';
import { DeleteTeamDialog, TeamNameDialog, useTeamMutations } from './TeamDialogs';
import { ns } from './messages';

export function TeamDetail({ id }: { id: number }) {
  const { t } = useTranslation([ns, 'common', 'limits']);
  const can = usePermissions();
  const { session } = useAuth();
  const toast = useToast();
  const navigate = useNavigate();
  const mutations = useTeamMutations();
  const team = useQuery({
    queryKey: ['team', id],
    queryFn: () => unwrap(client.GET('/api/v1/teams/{id}', { params: { path: { id } } })),
  });
  const [renaming, setRenaming] = useState(false);
  const [deleting, setDeleting] = useState(false);

  if (team.isPending) return <Loading />;
  if (team.isError) {
    const missing = team.error instanceof ApiError && team.error.status === 404;
    return (
      <>
        <p>
          <Link to="/teams">{t('all_teams')}</Link>
        </p>
        {missing ? <Empty>{t('not_found')}</Empty> : <ErrorState error={team.error} onRetry={() => void team.refetch()} />}
      </>
    );
  }
  const data = team.data;
  const role = isRole(data.role) ? data.role : null;
  const ownRole = session?.memberships.find((m) => m.team_id === id)?.role ?? null;
  const manages = role === 'owner' || role === 'admin';

  return (
    <>
      <p style={{ margin: '0 0 0.5rem' }}>
        <Link to="/teams">{t('all_teams')}</Link>
      </p>
      <div className="page-header">
        <h1>{data.name}</h1>
        {ownRole && <RoleBadge role={ownRole} />}
        {can.isAdmin && <span className="badge">{t('instance_admin')}</span>}
        <span className="spacer" />
        {manages && (
          <button type="button" onClick={() => setRenaming(true)}>
            {t('rename')}
          </button>
        )}
        {role === 'owner' && (
          <button type="button" className="danger" onClick={() => setDeleting(true)}>
            {t('delete_team')}
          </button>
        )}
      </div>
      <section className="team-limits" aria-labelledby="team-limits">
        <h2 id="team-limits">{t('limits:badges_label')}</h2>
        <LimitBadges scope={{ type: 'team', id }} />
      </section>
      <div className="stack">
        <Members teamId={id} callerRole={role} />
        {manages && <Invitations teamId={id} teamName={data.name} callerRole={role} />}
      </div>
      <TeamNameDialog
        open={renaming}
        title={t('rename_title')}
        initial={data.name}
        submitLabel={t('rename')}
        onClose={() => setRenaming(false)}
        onSubmit={async (name) => {
          const renamed = await mutations.rename(id, name);
          toast(t('renamed', { name: renamed.name }));
        }}
      />
      <DeleteTeamDialog
        team={deleting ? data : null}
        onClose={() => setDeleting(false)}
        onDeleted={() => navigate('/teams', { replace: true })}
      />
    </>
  );
}
