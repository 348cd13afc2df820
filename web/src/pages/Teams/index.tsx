// Teams (/teams) and one team (/teams/:id): members with roles, invitations with copyable links.
// What is offered follows the server's rules (crates/tollgate-core/src/role.rs `may_assign`):
// admins manage members and viewers, owners manage everyone, a team always keeps one owner.
import { Link, useParams } from 'react-router';
import { useTranslation } from 'react-i18next';
import { Empty } from '../../components/ui';
import { TeamDetail } from './TeamDetail';
import { TeamList } from './TeamList';
import { ns } from './messages';

export default function TeamsPage() {
  const { id } = useParams();
  const teamId = id === undefined ? null : Number(id);
  if (teamId === null) return <TeamList />;
  if (!Number.isInteger(teamId) || teamId <= 0) return <TeamDetailInvalid />;
  return <TeamDetail key={teamId} id={teamId} />;
}

function TeamDetailInvalid() {
  const { t } = useTranslation(ns);
  return (
    <>
      <p>
        <Link to="/teams">{t('all_teams')}</Link>
      </p>
      <Empty>{t('not_found')}</Empty>
    </>
  );
}
