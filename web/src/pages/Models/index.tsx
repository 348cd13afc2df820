// Models: what llm routes serve (names, aliases, pools, strategy, fallbacks), read by every
// signed-in user; for instance admins also the upstream targets with their health in this process
// (circuit, calls in flight, this minute's rate, recent attempts and errors), and their management.
import { useState } from 'react';
import { useQuery } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { client, unwrap } from '../../api/client';
import { usePermissions } from '../../auth';
import { Empty, ErrorState, Loading, PageHeader } from '../../components/ui';
import { dateTime } from '../../format';
import { DeleteModelDialog, DeleteTargetDialog, ModelDialog, TargetDialog } from './Dialogs';
import { ns } from './messages';
import { PricesSection } from './Prices';
import { circuitTone, recentTotals, type ModelView, type TargetHealth, type TargetView } from './model';

/** How often the targets' health is read again. */
const HEALTH_REFRESH_MS = 5_000;

export default function ModelsPage() {
  const { t } = useTranslation([ns, 'common']);
  const can = usePermissions();
  const models = useQuery({ queryKey: ['models'], queryFn: () => unwrap(client.GET('/api/v1/models')) });
  const targets = useQuery({
    queryKey: ['targets'],
    queryFn: () => unwrap(client.GET('/api/v1/targets')),
    enabled: can.isAdmin,
  });
  const health = useQuery({
    queryKey: ['targets', 'health'],
    queryFn: () => unwrap(client.GET('/api/v1/targets/health')),
    enabled: can.isAdmin,
    refetchInterval: HEALTH_REFRESH_MS,
  });
  const [editingModel, setEditingModel] = useState<ModelView | 'new' | null>(null);
  const [deletingModel, setDeletingModel] = useState<ModelView | null>(null);
  const [editingTarget, setEditingTarget] = useState<TargetView | 'new' | null>(null);
  const [deletingTarget, setDeletingTarget] = useState<TargetView | null>(null);

  const weights = new Map((targets.data ?? []).map((x) => [x.name, x.weight]));
  const healthOf = new Map((health.data ?? []).map((h) => [h.target_id, h]));
  const modelList = [...(models.data ?? [])].sort((a, b) => a.name.localeCompare(b.name));
  const targetList = [...(targets.data ?? [])].sort((a, b) => a.name.localeCompare(b.name));

  return (
    <div className="models-page">
      <PageHeader title={t('title')} subtitle={t('subtitle')}>
        {can.isAdmin && (
          <div className="actions">
            <button type="button" onClick={() => setEditingTarget('new')}>
              {t('create_target')}
            </button>
            <button type="button" className="primary" onClick={() => setEditingModel('new')}>
              {t('create_model')}
            </button>
          </div>
        )}
      </PageHeader>

      <section aria-labelledby="models-heading">
        <h2 id="models-heading">{t('models')}</h2>
        {models.isPending ? (
          <Loading />
        ) : models.isError ? (
          <ErrorState error={models.error} onRetry={() => void models.refetch()} />
        ) : modelList.length === 0 ? (
          <Empty>{t('model_empty')}</Empty>
        ) : (
          <div className="table-wrap">
            <table className="models-table">
              <thead>
                <tr>
                  <th scope="col">{t('col_name')}</th>
                  <th scope="col">{t('col_aliases')}</th>
                  <th scope="col">{t('col_pool')}</th>
                  <th scope="col">{t('col_strategy')}</th>
                  <th scope="col">{t('col_fallbacks')}</th>
                  {can.isAdmin && (
                    <th scope="col">
                      <span className="sr-only">{t('col_actions')}</span>
                    </th>
                  )}
                </tr>
              </thead>
              <tbody>
                {modelList.map((m) => (
                  <tr key={m.id} data-model={m.name}>
                    <td title={dateTime(m.updated_at)}>
                      <strong className="mono">{m.name}</strong>
                    </td>
                    <td>
                      {m.aliases.length ? (
                        m.aliases.map((a) => (
                          <span key={a} className="badge">
                            {a}
                          </span>
                        ))
                      ) : (
                        <span className="muted">—</span>
                      )}
                    </td>
                    <td>
                      <ul className="plain">
                        {m.pool.map((p) => (
                          <li key={p.target} className="mono">
                            {p.target}
                            {p.upstream_model && <> → {p.upstream_model}</>}
                            {weights.has(p.target) && <span className="muted"> ×{weights.get(p.target)}</span>}
                          </li>
                        ))}
                      </ul>
                    </td>
                    <td>{t(`strategy_${m.strategy}`)}</td>
                    <td className="mono">
                      {m.fallbacks.length ? m.fallbacks.join(' → ') : <span className="muted">—</span>}
                    </td>
                    {can.isAdmin && (
                      <td>
                        <div className="actions">
                          <button
                            type="button"
                            className="small"
                            aria-label={t('edit_label', { name: m.name })}
                            onClick={() => setEditingModel(m)}
                          >
                            {t('edit')}
                          </button>
                          <button
                            type="button"
                            className="small danger"
                            aria-label={t('delete_label', { name: m.name })}
                            onClick={() => setDeletingModel(m)}
                          >
                            {t('delete')}
                          </button>
                        </div>
                      </td>
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>

      {can.isAdmin && (
        <section aria-labelledby="targets-heading">
          <h2 id="targets-heading">{t('targets')}</h2>
          {targets.isPending ? (
            <Loading />
          ) : targets.isError ? (
            <ErrorState error={targets.error} onRetry={() => void targets.refetch()} />
          ) : targetList.length === 0 ? (
            <Empty>{t('target_empty')}</Empty>
          ) : (
            <div className="table-wrap">
              <table className="targets-table">
                <thead>
                  <tr>
                    <th scope="col">{t('col_name')}</th>
                    <th scope="col">{t('col_provider')}</th>
                    <th scope="col">{t('col_base_url')}</th>
                    <th scope="col">{t('col_credential')}</th>
                    <th scope="col">{t('col_circuit')}</th>
                    <th scope="col">{t('col_in_flight')}</th>
                    <th scope="col">{t('col_rate')}</th>
                    <th scope="col">{t('col_recent')}</th>
                    <th scope="col">{t('col_errors')}</th>
                    <th scope="col">
                      <span className="sr-only">{t('col_actions')}</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {targetList.map((x) => (
                    <TargetRow
                      key={x.id}
                      target={x}
                      health={healthOf.get(x.id)}
                      onEdit={() => setEditingTarget(x)}
                      onDelete={() => setDeletingTarget(x)}
                    />
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </section>
      )}

      <PricesSection />

      {editingModel && (
        <ModelDialog model={editingModel === 'new' ? null : editingModel} onClose={() => setEditingModel(null)} />
      )}
      {editingTarget && (
        <TargetDialog target={editingTarget === 'new' ? null : editingTarget} onClose={() => setEditingTarget(null)} />
      )}
      <DeleteModelDialog model={deletingModel} onClose={() => setDeletingModel(null)} />
      <DeleteTargetDialog target={deletingTarget} onClose={() => setDeletingTarget(null)} />
    </div>
  );
}

export function TargetRow({
  target: x,
  health: h,
  onEdit,
  onDelete,
}: {
  target: TargetView;
  health: TargetHealth | undefined;
  onEdit: () => void;
  onDelete: () => void;
}) {
  const { t } = useTranslation(ns);
  const totals = h ? recentTotals(h) : { attempts: 0, errors: 0 };
  const circuit = h?.circuit ?? 'closed';
  return (
    <tr data-target={x.name}>
      <td title={dateTime(x.updated_at)}>
        <strong className="mono">{x.name}</strong>
      </td>
      <td>
        <span className="badge info">{x.provider}</span>
      </td>
      <td className="mono" title={x.base_url}>
        {x.base_url}
      </td>
      <td className="mono">
        {x.has_credential ? (
          `${x.credential_header.name}: ${x.credential_header.format}`
        ) : (
          <span className="muted">{t('no_credential')}</span>
        )}
      </td>
      <td className="target-circuit">
        <span className={`badge ${circuitTone(circuit)}`}>{t(`circuit_${circuit}`)}</span>
        {h?.open_since != null && (
          <div className="muted small">{t('open_since', { time: dateTime(h.open_since) })}</div>
        )}
        {circuit === 'open' && h?.reopens_at != null && (
          <div className="muted small">{t('reopens', { time: dateTime(h.reopens_at) })}</div>
        )}
      </td>
      <td className="target-in-flight">{h?.in_flight ?? 0}</td>
      <td className="target-rate">
        {h?.rpm ? t('rate_of', { count: h.current_minute_attempts, ceiling: h.rpm }) : (h?.current_minute_attempts ?? 0)}
      </td>
      <td className="target-recent">{t('recent_value', totals)}</td>
      <td className="target-errors">
        {h && h.recent_errors.length > 0 ? (
          <ul className="plain">
            {h.recent_errors.map((e, i) => (
              <li key={i}>
                <span className="badge danger">{e.status}</span> <span className="muted">{dateTime(e.at)}</span>{' '}
                {e.reason}
              </li>
            ))}
          </ul>
        ) : (
          <span className="muted">—</span>
        )}
      </td>
      <td>
        <div className="actions">
          <button type="button" className="small" aria-label={t('edit_label', { name: x.name })} onClick={onEdit}>
            {t('edit')}
          </button>
          <button
            type="button"
            className="small danger"
            aria-label={t('delete_label', { name: x.name })}
            onClick={onDelete}
          >
            {t('delete')}
          </button>
        </div>
      </td>
    </tr>
  );
}
