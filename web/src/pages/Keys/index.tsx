// API keys: the masked list, and — for those allowed — create (the secret shown once), edit,
// revoke, delete and reveal. Owners and admins manage every key of their team; members manage the
// keys they created; viewers only read. The server checks all of it again.
import { useId, useMemo, useState } from 'react';
import { useSearchParams } from 'react-router';
import { useTranslation } from 'react-i18next';
import { useKeys, useRoutes, useTeams } from '../../api/queries';
import { useAuth, usePermissions } from '../../auth';
import { Empty, ErrorState, Loading, PageHeader, Segmented, TeamOptions } from '../../components/ui';
import { integer } from '../../format';
import { CreateKeyDialog } from './CreateKeyDialog';
import { EditKeyDialog } from './EditKeyDialog';
import { DeleteDialog, RevealDialog, RevokeDialog } from './KeyActionDialogs';
import { KeysTable } from './KeysTable';
import { ns } from './messages';
import { filterKeys, type KeyView, type TeamOption } from './model';

export default function KeysPage() {
  const { t } = useTranslation([ns, 'common']);
  const { session } = useAuth();
  const can = usePermissions();
  const email = session?.user.email ?? '';
  const [params, setParams] = useSearchParams();
  const ids = useId();
  const text = params.get('q') ?? '';
  const teamFilter = Number(params.get('team')) || undefined;
  const statusFilter = params.get('status') ?? '';
  const setFilter = (name: string, value: string) =>
    setParams(
      (prev) => {
        const p = new URLSearchParams(prev);
        if (value) p.set(name, value);
        else p.delete(name);
        return p;
      },
      { replace: true },
    );

  const keys = useKeys();
  const routes = useRoutes();
  const teams = useTeams();

  // Teams the user may create keys in (instance admins: every team).
  const keyTeams: TeamOption[] = useMemo(() => {
    const all = teams.data?.map((x) => ({ id: x.id, name: x.name })) ?? can.keyTeams;
    return all.filter((x) => can.canCreateKeys(x.id));
  }, [teams.data, can]);
  const mayCreate = can.isAdmin || can.keyTeams.length > 0;

  const [creating, setCreating] = useState(false);
  const [editing, setEditing] = useState<KeyView | null>(null);
  const [revoking, setRevoking] = useState<KeyView | null>(null);
  const [deleting, setDeleting] = useState<KeyView | null>(null);
  const [revealing, setRevealing] = useState<KeyView | null>(null);

  const list = keys.data ?? [];
  const shown = filterKeys(list, text, teamFilter, statusFilter);
  const teamOptions = teams.data ?? [...new Map(list.map((k) => [k.team_id, { id: k.team_id, name: k.team }])).values()];
  const routeNames = new Map((routes.data ?? []).map((r) => [r.id, r.name]));

  return (
    <div className="keys-page">
      <PageHeader title={t('title')} subtitle={t('subtitle')}>
        {mayCreate && (
          <button type="button" className="primary" onClick={() => setCreating(true)}>
            {t('create_key')}
          </button>
        )}
      </PageHeader>

      <div className="filters" role="search">
        <div className="filter-field keys-filter-text">
          <label htmlFor={`${ids}-q`}>{t('filter')}</label>
          <input
            id={`${ids}-q`}
            type="search"
            value={text}
            placeholder={t('filter_placeholder')}
            onChange={(e) => setFilter('q', e.target.value)}
          />
        </div>
        <div className="filter-field">
          <label htmlFor={`${ids}-team`}>{t('team')}</label>
          <select id={`${ids}-team`} value={teamFilter ?? ''} onChange={(e) => setFilter('team', e.target.value)}>
            <TeamOptions teams={teamOptions} all />
          </select>
        </div>
        <div className="filter-field">
          <span className="keys-status-label" aria-hidden="true">
            {t('status')}
          </span>
          <Segmented
            label={t('status')}
            value={statusFilter}
            onChange={(v) => setFilter('status', v)}
            options={(['', 'active', 'expired', 'revoked'] as const).map((s) => ({
              value: s,
              label: (
                <>
                  {s ? t(`status_${s}`) : t('common:all')}{' '}
                  <span className="keys-count">{integer(s ? list.filter((k) => k.status === s).length : list.length)}</span>
                </>
              ),
            }))}
          />
        </div>
      </div>

      {keys.isPending ? (
        <Loading />
      ) : keys.isError ? (
        <ErrorState error={keys.error} onRetry={() => void keys.refetch()} />
      ) : list.length === 0 ? (
        <Empty>
          <p>{t('empty')}</p>
          {mayCreate && <p className="muted">{t('empty_create')}</p>}
        </Empty>
      ) : shown.length === 0 ? (
        <Empty>{t('empty_filtered')}</Empty>
      ) : (
        <KeysTable
          keys={shown}
          can={can}
          email={email}
          routeNames={routeNames}
          onEdit={setEditing}
          onRevoke={setRevoking}
          onDelete={setDeleting}
          onReveal={setRevealing}
        />
      )}

      {creating && (
        <CreateKeyDialog
          teams={keyTeams}
          routes={routes.data ?? []}
          defaultTeam={teamFilter && keyTeams.some((x) => x.id === teamFilter) ? teamFilter : undefined}
          onClose={() => setCreating(false)}
        />
      )}
      {editing && <EditKeyDialog keyView={editing} routes={routes.data ?? []} onClose={() => setEditing(null)} />}
      <RevokeDialog keyView={revoking} onClose={() => setRevoking(null)} />
      <DeleteDialog keyView={deleting} onClose={() => setDeleting(null)} />
      {revealing && <RevealDialog keyView={revealing} onClose={() => setRevealing(null)} />}
    </div>
  );
}
