// Limits: every limit the caller can see with its current use (gauge coloured at the alert
// thresholds), what remains and when it resets; owners and admins add, edit and remove them.
import { useMemo, useState } from 'react';
import { useSearchParams } from 'react-router';
import { useQueryClient } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { client, unwrap } from '../../api/client';
import { REFERENCE_STALE_MS, useKeys, useLimits, useRoutes, useTeams } from '../../api/queries';
import { epochMs, SCOPE_TYPES, type Scope, type ScopeType } from '../../api/vocabulary';
import { usePermissions } from '../../auth';
import { useDescribeKind } from '../../components/LimitBadges';
import { ConfirmAction, Empty, ErrorState, Loading, PageHeader, useToast } from '../../components/ui';
import { compact, dateTime, integer, percent, relative, usd } from '../../format';
import { LimitDialog, type ScopeChoices } from './LimitDialog';
import { ns } from './messages';
import { creatableScopes, limitsOn, mayManageLimit, sortLimits, toneOf, type LimitView } from './model';

/** How often the gauges refresh while the page is open. */
const REFRESH_MS = 10_000;

function scopeFromParams(params: URLSearchParams): Scope | null {
  const type = params.get('scope');
  if (type === 'instance') return { type: 'instance' };
  const id = Number(params.get('id'));
  if ((type === 'team' || type === 'key' || type === 'route') && Number.isInteger(id) && id > 0) return { type, id };
  return null;
}

export default function LimitsPage() {
  const { t } = useTranslation([ns, 'common']);
  const can = usePermissions();
  const queries = useQueryClient();
  const toast = useToast();
  const describe = useDescribeKind();
  const [params, setParams] = useSearchParams();
  const limits = useLimits(undefined, { refetchInterval: REFRESH_MS });
  const keys = useKeys(undefined, { staleTime: REFERENCE_STALE_MS });
  const teams = useTeams({ staleTime: REFERENCE_STALE_MS });
  const routes = useRoutes({ staleTime: REFERENCE_STALE_MS, enabled: can.isAdmin });
  const [editing, setEditing] = useState<LimitView | 'new' | null>(null);
  const [deleting, setDeleting] = useState<LimitView | null>(null);

  const focus = scopeFromParams(params);
  const typeFilter = (SCOPE_TYPES as readonly string[]).includes(params.get('scope') ?? '')
    ? (params.get('scope') as ScopeType)
    : null;

  const keyTeams = useMemo(() => {
    const m = new Map<number, number>();
    for (const k of keys.data ?? []) m.set(k.id, k.team_id);
    return m;
  }, [keys.data]);
  const manages = (l: LimitView) => mayManageLimit(can, l.scope, (id) => keyTeams.get(id));

  const choices: ScopeChoices = useMemo(() => {
    const teamList = (teams.data ?? []).filter((x) => can.canManage(x.id)).map((x) => ({ id: x.id, name: x.name }));
    return {
      types: creatableScopes(can),
      teams: teamList,
      keys: (keys.data ?? [])
        .filter((k) => k.status !== 'revoked' && can.canManage(k.team_id))
        .map((k) => ({ id: k.id, name: k.name, team: k.team })),
      routes: (routes.data ?? []).map((r) => ({ id: r.id, name: r.name })),
    };
  }, [teams.data, keys.data, routes.data, can]);
  const types = choices.types;

  const all = sortLimits(limits.data?.limits ?? []);
  const shown = focus ? limitsOn(all, focus) : typeFilter ? all.filter((l) => l.scope.type === typeFilter) : all;
  const anyActions = shown.some(manages);
  const scopeText = (l: LimitView) =>
    l.scope.type === 'instance' ? t('scope_instance') : t('scope_named', { type: t(`scope_${l.scope.type}`), name: l.scope_name });
  const figure = (l: LimitView, n: number) => (l.kind.type === 'cost_budget' ? usd(n / 1_000_000) : integer(n));

  return (
    <div className="limits-page">
      <PageHeader title={t('title')} subtitle={t('subtitle')}>
        {types.length > 0 && (
          <button type="button" className="primary" onClick={() => setEditing('new')}>
            {t('create_limit')}
          </button>
        )}
      </PageHeader>

      {all.length > 0 && (
        <div className="filters" role="search">
          <div className="filter-field">
            <label htmlFor="limits-scope-filter">{t('show')}</label>
            <select
              id="limits-scope-filter"
              value={focus && focus.type !== 'instance' ? `${focus.type}:${focus.id}` : (typeFilter ?? '')}
              onChange={(e) => {
                const [type, id] = e.target.value.split(':');
                const next = new URLSearchParams();
                if (type) next.set('scope', type);
                if (id) next.set('id', id);
                setParams(next, { replace: true });
              }}
            >
              <option value="">{t('all_scopes')}</option>
              {SCOPE_TYPES.map((s) => (
                <option key={s} value={s}>
                  {t(`scope_${s}`)}
                </option>
              ))}
              {focus && focus.type !== 'instance' && (
                <option value={`${focus.type}:${focus.id}`}>
                  {all.find((l) => limitsOn([l], focus).length > 0)?.scope_name ?? `${t(`scope_${focus.type}`)} #${focus.id}`}
                </option>
              )}
            </select>
          </div>
        </div>
      )}

      {types.length === 0 && all.length > 0 && <p className="muted">{t('read_only')}</p>}

      {limits.isPending ? (
        <Loading />
      ) : limits.isError ? (
        <ErrorState error={limits.error} onRetry={() => void limits.refetch()} />
      ) : all.length === 0 ? (
        <Empty>
          <p>{t('empty')}</p>
          {types.length > 0 && <p className="muted">{t('empty_create')}</p>}
        </Empty>
      ) : shown.length === 0 ? (
        <Empty>{t('empty_filtered')}</Empty>
      ) : (
        <div className="table-wrap">
          <table className="limits-table">
            <thead>
              <tr>
                <th scope="col">{t('col_scope')}</th>
                <th scope="col">{t('col_limit')}</th>
                <th scope="col">{t('col_use')}</th>
                <th scope="col" className="num">
                  {t('col_remaining')}
                </th>
                <th scope="col">{t('col_reset')}</th>
                {anyActions && (
                  <th scope="col">
                    <span className="sr-only">{t('col_actions')}</span>
                  </th>
                )}
              </tr>
            </thead>
            <tbody>
              {shown.map((l) => {
                const text = describe(l.kind);
                const scope = scopeText(l);
                const u = l.usage;
                const tone = toneOf(u?.percent, l.alert_at);
                return (
                  <tr key={l.id}>
                    <td>
                      <span className="badge">{t(`scope_${l.scope.type}`)}</span>{' '}
                      {l.scope.type !== 'instance' && <strong>{l.scope_name}</strong>}
                    </td>
                    <td>
                      {text}{' '}
                      <span className={`badge ${l.enforcement === 'hard' ? 'danger' : 'warning'}`}>
                        {t(l.enforcement === 'hard' ? 'badge_hard' : 'badge_soft')}
                      </span>
                    </td>
                    <td className="limits-use">
                      {u ? (
                        <div
                          role="meter"
                          aria-label={t('gauge_label', { limit: text, scope })}
                          aria-valuemin={0}
                          aria-valuemax={100}
                          aria-valuenow={Math.round(Math.min(100, Math.max(0, u.percent)))}
                          aria-valuetext={percent(u.percent / 100, undefined, 0)}
                        >
                          <div className="limits-use-figures">
                            <strong className="limits-percent">{percent(u.percent / 100, undefined, 0)}</strong>
                            <span className="muted" title={`${figure(l, u.used)} / ${figure(l, u.max)}`}>
                              {l.kind.type === 'cost_budget'
                                ? t('used_of', { used: figure(l, u.used), max: figure(l, u.max) })
                                : t('used_of', { used: compact(u.used), max: compact(u.max) })}
                            </span>
                          </div>
                          <span className={`limit-bar ${tone}`} aria-hidden="true">
                            <span style={{ width: `${Math.min(100, Math.max(0, u.percent))}%` }} />
                          </span>
                          {u.reserved > 0 && (
                            <small className="muted">{t('reserved', { reserved: figure(l, u.reserved) })}</small>
                          )}
                        </div>
                      ) : (
                        <span className="muted">{t('no_usage')}</span>
                      )}
                    </td>
                    <td className="num">{u ? figure(l, u.remaining) : '—'}</td>
                    <td>
                      {u && epochMs(u.reset_at) !== null ? (
                        <time dateTime={new Date(epochMs(u.reset_at) ?? 0).toISOString()} title={relative(epochMs(u.reset_at))}>
                          {dateTime(epochMs(u.reset_at))}
                        </time>
                      ) : (
                        <span className="muted">{u ? t('never_resets') : '—'}</span>
                      )}
                    </td>
                    {anyActions && (
                      <td>
                        {manages(l) && (
                          <div className="actions">
                            <button
                              type="button"
                              className="small"
                              aria-label={t('edit_label', { limit: text, scope })}
                              onClick={() => setEditing(l)}
                            >
                              {t('edit')}
                            </button>
                            <button
                              type="button"
                              className="small danger"
                              aria-label={t('delete_label', { limit: text, scope })}
                              onClick={() => setDeleting(l)}
                            >
                              {t('delete')}
                            </button>
                          </div>
                        )}
                      </td>
                    )}
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}

      {editing && (
        <LimitDialog
          limit={editing === 'new' ? null : editing}
          initialScope={editing === 'new' && focus && types.includes(focus.type) ? focus : undefined}
          choices={choices}
          onClose={() => setEditing(null)}
        />
      )}
      <ConfirmAction
        target={deleting}
        title={t('delete_title')}
        message={deleting ? t('delete_message', { scope: scopeText(deleting), limit: describe(deleting.kind) }) : ''}
        confirmLabel={t('delete')}
        run={(l) => unwrap(client.DELETE('/api/v1/limits/{id}', { params: { path: { id: l.id } } }))}
        onDone={() => {
          void queries.invalidateQueries({ queryKey: ['limits'] });
          toast(t('deleted'));
        }}
        onClose={() => setDeleting(null)}
      />
    </div>
  );
}
