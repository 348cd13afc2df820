// The masked key list, with expiry, allowed routes and the actions the caller may take.
import { useTranslation } from 'react-i18next';
import { LimitBadges } from '../../components/LimitBadges';
import type { Permissions } from '../../auth';
import { date, dateTime, relative } from '../../format';
import { ns } from './messages';
import { DAY_MS, type KeyView, mayChangeKey, mayRevealKey, statusTone } from './model';

export function KeysTable({
  keys,
  can,
  email,
  routeNames,
  onEdit,
  onRevoke,
  onDelete,
  onReveal,
}: {
  keys: KeyView[];
  can: Permissions;
  email: string;
  routeNames: Map<number, string>;
  onEdit: (k: KeyView) => void;
  onRevoke: (k: KeyView) => void;
  onDelete: (k: KeyView) => void;
  onReveal: (k: KeyView) => void;
}) {
  const { t } = useTranslation([ns, 'limits']);
  const anyActions = keys.some((k) => mayChangeKey(can, email, k));
  return (
    <div className="table-wrap">
      <table className="keys-table">
        <thead>
          <tr>
            <th scope="col">{t('col_name')}</th>
            <th scope="col">{t('col_key')}</th>
            <th scope="col">{t('col_team')}</th>
            <th scope="col">{t('col_status')}</th>
            <th scope="col" className="keys-created">
              {t('col_created')}
            </th>
            <th scope="col">{t('col_last_used')}</th>
            <th scope="col">{t('col_routes')}</th>
            <th scope="col">{t('limits:badges_label')}</th>
            {anyActions && (
              <th scope="col" className="num">
                <span className="sr-only">{t('col_actions')}</span>
              </th>
            )}
          </tr>
        </thead>
        <tbody>
          {keys.map((k) => {
            const change = mayChangeKey(can, email, k);
            const reveal = mayRevealKey(can, k);
            return (
              <tr key={k.id} className={k.status === 'revoked' ? 'keys-revoked' : undefined}>
                <td
                  className="keys-name"
                  title={`${t('col_created')}: ${dateTime(k.created_at)}${k.created_by ? ` · ${t('created_by', { who: k.created_by })}` : ''}`}
                >
                  <strong>{k.name}</strong>
                  {k.description && <div className="muted keys-desc">{k.description}</div>}
                </td>
                <td className="keys-key">
                  <code className="keys-prefix">{k.prefix}</code>
                  {reveal && (
                    <button
                      type="button"
                      className="small ghost keys-reveal"
                      aria-label={t('reveal_label', { name: k.name })}
                      onClick={() => onReveal(k)}
                    >
                      {t('reveal')}
                    </button>
                  )}
                </td>
                <td>{k.team}</td>
                <td>
                  <span className={`badge ${statusTone(k.status)}`}>{t(`status_${k.status}`, k.status)}</span>
                  <ExpiryLine keyView={k} />
                </td>
                <td className="keys-created" title={`${dateTime(k.created_at)}${k.created_by ? ` · ${t('created_by', { who: k.created_by })}` : ''}`}>
                  {date(k.created_at)}
                </td>
                <td>
                  {k.last_used_at ? (
                    <time dateTime={new Date(k.last_used_at).toISOString()} title={dateTime(k.last_used_at)}>
                      {relative(k.last_used_at)}
                    </time>
                  ) : (
                    <span className="muted">{t('never_used')}</span>
                  )}
                </td>
                <td>
                  <RouteList ids={k.route_ids} names={routeNames} />
                  {k.models && k.models.length > 0 && (
                    <div className="keys-sub muted" title={k.models.join(', ')}>
                      {t('models_line', { models: k.models.join(', ') })}
                    </div>
                  )}
                </td>
                <td>
                  <LimitBadges scope={{ type: 'key', id: k.id }} />
                </td>
                {anyActions && (
                  <td>
                    <div className="actions">
                      {change && (
                        <button
                          type="button"
                          className="small"
                          aria-label={t('edit_label', { name: k.name })}
                          onClick={() => onEdit(k)}
                        >
                          {t('edit')}
                        </button>
                      )}
                      {change && k.status !== 'revoked' && (
                        <button
                          type="button"
                          className="small danger"
                          aria-label={t('revoke_label', { name: k.name })}
                          onClick={() => onRevoke(k)}
                        >
                          {t('revoke')}
                        </button>
                      )}
                      {change && (
                        <button
                          type="button"
                          className="small danger"
                          aria-label={t('delete_label', { name: k.name })}
                          onClick={() => onDelete(k)}
                        >
                          {t('delete')}
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
}

/** Under the status: when the key expires, expired or was revoked. */
function ExpiryLine({ keyView: k }: { keyView: KeyView }) {
  const { t } = useTranslation(ns);
  if (k.revoked_at) {
    return (
      <div className="keys-sub muted" title={dateTime(k.revoked_at)}>
        {t('revoked_on', { date: date(k.revoked_at) })}
      </div>
    );
  }
  if (!k.expires_at) return <div className="keys-sub muted">{t('no_expiry')}</div>;
  const soon = k.status === 'active' && k.expires_at - Date.now() < 7 * DAY_MS;
  return (
    <div className={`keys-sub${soon ? ' keys-soon' : ' muted'}`} title={`${dateTime(k.expires_at)} (${relative(k.expires_at)})`}>
      {t(k.status === 'expired' ? 'expired_on' : 'expires_on', { date: date(k.expires_at) })}
    </div>
  );
}

function RouteList({ ids, names }: { ids: number[] | null | undefined; names: Map<number, string> }) {
  const { t } = useTranslation(ns);
  if (ids === null || ids === undefined) return <span className="muted">{t('all_routes')}</span>;
  if (ids.length === 0) return <span className="badge warning">{t('no_routes')}</span>;
  const labels = ids.map((id) => names.get(id) ?? `#${id}`);
  const first = labels.slice(0, 3);
  return (
    <span className="keys-routes" title={labels.join(', ')}>
      {first.map((l) => (
        <span key={l} className="badge info">
          {l}
        </span>
      ))}
      {labels.length > first.length && <span className="muted">{t('more_routes', { count: labels.length - first.length })}</span>}
    </span>
  );
}
