// Routes: path prefixes mapped to upstream services. Owners and admins of a team manage its
// routes; instance admins also manage the shared ones. The upstream credential is write-only:
// the list only says whether one is stored.
import { useId, useMemo, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { REFERENCE_STALE_MS, useRoutes, useSettings, useTeams } from '../../api/queries';
import { usePermissions } from '../../auth';
import { LimitBadges } from '../../components/LimitBadges';
import { Empty, ErrorState, Loading, PageHeader } from '../../components/ui';
import { dateTime, millis } from '../../format';
import { DeleteRouteDialog } from './DeleteRouteDialog';
import { RouteDialog } from './RouteDialog';
import { ns } from './messages';
import { mayManageRoute, type RouteView } from './model';

export default function RoutesPage() {
  const { t } = useTranslation([ns, 'common', 'limits']);
  const can = usePermissions();
  const routes = useRoutes();
  const teams = useTeams();
  const settings = useSettings({ enabled: can.isAdmin, staleTime: REFERENCE_STALE_MS });
  const ids = useId();
  const [text, setText] = useState('');
  const [owner, setOwner] = useState('');
  const [editing, setEditing] = useState<RouteView | 'new' | null>(null);
  const [deleting, setDeleting] = useState<RouteView | null>(null);

  const teamNames = useMemo(() => {
    const names = new Map<number, string>();
    for (const x of teams.data ?? []) names.set(x.id, x.name);
    return names;
  }, [teams.data]);
  const managedTeams = useMemo(
    () => (teams.data ?? can.managedTeams).filter((x) => can.canManage(x.id)).map((x) => ({ id: x.id, name: x.name })),
    [teams.data, can],
  );
  const mayCreate = can.isAdmin || managedTeams.length > 0;
  const masterKey = can.isAdmin ? settings.data?.master_key : undefined;

  const list = routes.data ?? [];
  const needle = text.trim().toLowerCase();
  const shown = list
    .filter((r) =>
      owner === '' ? true : owner === 'shared' ? r.team_id === null || r.team_id === undefined : r.team_id === Number(owner),
    )
    .filter(
      (r) =>
        !needle ||
        r.name.toLowerCase().includes(needle) ||
        r.prefix.toLowerCase().includes(needle) ||
        r.upstream_url.toLowerCase().includes(needle),
    )
    .sort((a, b) => a.prefix.localeCompare(b.prefix));
  const anyActions = shown.some((r) => mayManageRoute(can, r));

  return (
    <div className="routes-page">
      <PageHeader title={t('title')} subtitle={t('subtitle')}>
        {mayCreate && (
          <button type="button" className="primary" onClick={() => setEditing('new')}>
            {t('create_route')}
          </button>
        )}
      </PageHeader>

      {list.length > 0 && (
        <div className="filters" role="search">
          <div className="filter-field routes-filter-text">
            <label htmlFor={`${ids}-q`}>{t('filter')}</label>
            <input
              id={`${ids}-q`}
              type="search"
              value={text}
              placeholder={t('filter_placeholder')}
              onChange={(e) => setText(e.target.value)}
            />
          </div>
          <div className="filter-field">
            <label htmlFor={`${ids}-owner`}>{t('owner')}</label>
            <select id={`${ids}-owner`} value={owner} onChange={(e) => setOwner(e.target.value)}>
              <option value="">{t('any_owner')}</option>
              <option value="shared">{t('shared_only')}</option>
              {[...teamNames.entries()].map(([id, name]) => (
                <option key={id} value={id}>
                  {name}
                </option>
              ))}
            </select>
          </div>
        </div>
      )}

      {routes.isPending ? (
        <Loading />
      ) : routes.isError ? (
        <ErrorState error={routes.error} onRetry={() => void routes.refetch()} />
      ) : list.length === 0 ? (
        <Empty>
          <p>{t('empty')}</p>
          {mayCreate && <p className="muted">{t('empty_create')}</p>}
        </Empty>
      ) : shown.length === 0 ? (
        <Empty>{t('empty_filtered')}</Empty>
      ) : (
        <div className="table-wrap">
          <table className="routes-table">
            <thead>
              <tr>
                <th scope="col">{t('col_name')}</th>
                <th scope="col">{t('col_prefix')}</th>
                <th scope="col">{t('col_upstream')}</th>
                <th scope="col">{t('col_kind')}</th>
                <th scope="col">{t('col_team')}</th>
                <th scope="col">{t('col_strip')}</th>
                <th scope="col" className="routes-timeouts-col">
                  {t('col_timeouts')}
                </th>
                <th scope="col">{t('col_credential')}</th>
                <th scope="col">{t('limits:badges_label')}</th>
                {anyActions && (
                  <th scope="col">
                    <span className="sr-only">{t('col_actions')}</span>
                  </th>
                )}
              </tr>
            </thead>
            <tbody>
              {shown.map((r) => (
                <tr key={r.id} className={r.enabled ? undefined : 'routes-disabled'}>
                  <td title={dateTime(r.updated_at)}>
                    <strong>{r.name}</strong> {!r.enabled && <span className="badge warning">{t('disabled')}</span>}
                  </td>
                  <td>
                    <code>{r.prefix}</code>
                  </td>
                  <td className="routes-upstream" title={r.upstream_url}>
                    <code>{r.upstream_url}</code>
                  </td>
                  <td>
                    <span className={`badge${r.kind === 'http' ? '' : ' info'}`}>{r.kind}</span>
                  </td>
                  <td>
                    {r.team_id ? (
                      (teamNames.get(r.team_id) ?? `#${r.team_id}`)
                    ) : (
                      <span className="badge">{t('shared')}</span>
                    )}
                  </td>
                  <td>{r.strip_prefix ? t('common:yes') : t('common:no')}</td>
                  <td
                    className="routes-timeouts-col muted"
                    title={t('timeouts_title', { connect: millis(r.connect_timeout_ms), total: millis(r.timeout_ms) })}
                  >
                    {t('timeouts_value', { connect: millis(r.connect_timeout_ms), total: millis(r.timeout_ms) })}
                  </td>
                  <td>
                    {r.has_credential ? (
                      <span className="badge success">{t('configured')}</span>
                    ) : (
                      <span className="muted">{t('not_configured')}</span>
                    )}
                  </td>
                  <td>
                    <LimitBadges scope={{ type: 'route', id: r.id }} />
                  </td>
                  {anyActions && (
                    <td>
                      {mayManageRoute(can, r) && (
                        <div className="actions">
                          <button
                            type="button"
                            className="small"
                            aria-label={t('edit_label', { name: r.name })}
                            onClick={() => setEditing(r)}
                          >
                            {t('edit')}
                          </button>
                          <button
                            type="button"
                            className="small danger"
                            aria-label={t('delete_label', { name: r.name })}
                            onClick={() => setDeleting(r)}
                          >
                            {t('delete')}
                          </button>
                        </div>
                      )}
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}

      {editing && (
        <RouteDialog
          route={editing === 'new' ? null : editing}
          teams={managedTeams}
          allowShared={can.isAdmin}
          teamName={editing !== 'new' && editing.team_id ? teamNames.get(editing.team_id) : undefined}
          masterKey={masterKey}
          onClose={() => setEditing(null)}
        />
      )}
      <DeleteRouteDialog route={deleting} onClose={() => setDeleting(null)} />
    </div>
  );
}
