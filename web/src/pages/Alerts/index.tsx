// Alerts: the channels alerts go to (instance admins add, test and remove them; a new channel's
// signing secret is shown once) and every recent delivery attempt, refreshed while open.
import { useState } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { client, unwrap } from '../../api/client';
import { useAlertChannels, useAlertRules, useDeliveries } from '../../api/queries';
import { epochMs } from '../../api/vocabulary';
import { usePermissions } from '../../auth';
import { ConfirmAction, ErrorAlert, PageHeader, QueryState, StatusBadge, useToast } from '../../components/ui';
import { date, dateTime, millis, relative, span } from '../../format';
import { AddChannelDialog } from './AddChannelDialog';
import { ns } from './messages';
import { type ChannelView, deliveryTone, maskUrl, mayManageChannels } from './model';

/** How often the deliveries refresh while the page is open. */
export const REFRESH_MS = 5_000;

export default function AlertsPage() {
  const { t } = useTranslation([ns, 'common']);
  const can = usePermissions();
  const manage = mayManageChannels(can);
  const queries = useQueryClient();
  const toast = useToast();
  const channels = useAlertChannels();
  const [channelId, setChannelId] = useState('');
  const deliveries = useDeliveries(channelId ? { channel_id: Number(channelId), limit: 100 } : { limit: 100 }, {
    refetchInterval: REFRESH_MS,
  });
  const rules = useAlertRules({ enabled: manage });
  const [adding, setAdding] = useState(false);
  const [deleting, setDeleting] = useState<ChannelView | null>(null);

  const test = useMutation({
    mutationFn: (c: ChannelView) =>
      unwrap(client.POST('/api/v1/alerts/channels/{id}/test', { params: { path: { id: c.id } } })),
    onSuccess: ({ delivery }, c) => {
      void queries.invalidateQueries({ queryKey: ['alert-deliveries'] });
      toast(
        delivery.status === 'delivered'
          ? t('test_ok', { name: c.name, status: delivery.http_status ?? '—', latency: millis(delivery.latency_ms) })
          : t('test_failed', {
              name: c.name,
              error: delivery.error ?? (delivery.http_status ? `HTTP ${delivery.http_status}` : delivery.status),
            }),
      );
    },
  });

  return (
    <div className="alerts-page">
      <PageHeader title={t('title')} subtitle={t('subtitle')} />

      <section className="alerts-section" aria-labelledby="alerts-channels">
        <div className="alerts-section-head">
          <h2 id="alerts-channels">{t('channels')}</h2>
          <span className="spacer" />
          {manage && (
            <button type="button" className="primary" onClick={() => setAdding(true)}>
              {t('add_channel')}
            </button>
          )}
        </div>
        {!manage && <p className="muted">{t('read_only')}</p>}
        <ErrorAlert error={test.error} />
        <QueryState
          query={channels}
          isEmpty={(d) => d.channels.length === 0}
          empty={
            <>
              <p>{t('no_channels')}</p>
              {manage && <p className="muted">{t('no_channels_hint')}</p>}
            </>
          }
        >
          {(d) => (
            <div className="table-wrap">
              <table className="alerts-channels">
                <thead>
                  <tr>
                    <th scope="col">{t('col_name')}</th>
                    <th scope="col">{t('col_format')}</th>
                    <th scope="col">{t('col_url')}</th>
                    <th scope="col">{t('col_created')}</th>
                    {manage && (
                      <th scope="col">
                        <span className="sr-only">{t('col_actions')}</span>
                      </th>
                    )}
                  </tr>
                </thead>
                <tbody>
                  {d.channels.map((c) => (
                    <tr key={c.id}>
                      <td>
                        <strong>{c.name}</strong>
                      </td>
                      <td>
                        <span className="badge info">{t(`format_short_${c.format}`)}</span>
                      </td>
                      <td className="alerts-url">
                        <code>{maskUrl(c.url)}</code>
                      </td>
                      <td title={`${dateTime(epochMs(c.created_at))}${c.created_by ? ` · ${c.created_by}` : ''}`}>
                        {date(epochMs(c.created_at))}
                      </td>
                      {manage && (
                        <td>
                          <div className="actions">
                            <button
                              type="button"
                              className="small"
                              aria-label={t('test_label', { name: c.name })}
                              disabled={test.isPending && test.variables?.id === c.id}
                              onClick={() => test.mutate(c)}
                            >
                              {test.isPending && test.variables?.id === c.id ? t('testing') : t('test')}
                            </button>
                            <button
                              type="button"
                              className="small danger"
                              aria-label={t('delete_label', { name: c.name })}
                              onClick={() => setDeleting(c)}
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
        </QueryState>
      </section>

      {manage && (
        <section className="alerts-section" aria-labelledby="alerts-rules">
          <div className="alerts-section-head">
            <h2 id="alerts-rules">{t('rules')}</h2>
          </div>
          <QueryState query={rules}>
            {(r) => (
              <>
                <ul className="alerts-rules">
                  <li>{t('rule_keys', { days: r.key_expiry_days.join(', ') })}</li>
                  <li>
                    {t('rule_routes', {
                      pct: r.route_error_rate_pct,
                      window: span(r.route_error_window_secs),
                      calls: r.route_error_min_calls,
                    })}
                  </li>
                  <li>{t('rule_upstream', { grace: span(r.upstream_unreachable_secs) })}</li>
                  <li>{t('rule_degraded', { grace: span(r.degraded_secs), stall: span(r.spool_stall_secs) })}</li>
                  <li>
                    {t('rule_timing', { interval: span(r.evaluate_interval_secs), renotify: span(r.renotify_secs) })}
                  </li>
                </ul>
                <p className="muted">{t('rules_hint')}</p>
              </>
            )}
          </QueryState>
        </section>
      )}

      <section className="alerts-section" aria-labelledby="alerts-deliveries">
        <div className="alerts-section-head">
          <h2 id="alerts-deliveries">{t('deliveries')}</h2>
          <span className="muted">{t('auto_refresh', { seconds: REFRESH_MS / 1000 })}</span>
          <span className="spacer" />
          {(channels.data?.channels.length ?? 0) > 0 && (
            <label className="row">
              {t('channel_filter')}
              <select value={channelId} onChange={(e) => setChannelId(e.target.value)}>
                <option value="">{t('all_channels')}</option>
                {channels.data?.channels.map((c) => (
                  <option key={c.id} value={c.id}>
                    {c.name}
                  </option>
                ))}
              </select>
            </label>
          )}
        </div>
        <QueryState query={deliveries} isEmpty={(d) => d.deliveries.length === 0} empty={t('no_deliveries')}>
          {(d) => (
            <div className="table-wrap">
              <table className="alerts-deliveries">
                <thead>
                  <tr>
                    <th scope="col">{t('col_at')}</th>
                    <th scope="col">{t('col_channel')}</th>
                    <th scope="col">{t('col_alert')}</th>
                    <th scope="col" className="num">
                      {t('col_attempt')}
                    </th>
                    <th scope="col">{t('col_status')}</th>
                    <th scope="col">{t('col_http')}</th>
                    <th scope="col" className="num">
                      {t('col_latency')}
                    </th>
                    <th scope="col">{t('col_error')}</th>
                  </tr>
                </thead>
                <tbody>
                  {d.deliveries.map((x) => (
                    <tr key={x.id}>
                      <td>
                        <time dateTime={String(x.at)} title={relative(epochMs(x.at))}>
                          {dateTime(epochMs(x.at))}
                        </time>
                      </td>
                      <td>{x.channel_name}</td>
                      <td title={x.dedup_key}>
                        <span className="badge">{x.kind}</span> {x.summary}
                      </td>
                      <td className="num">{x.attempt}</td>
                      <td>
                        <span className={`badge ${deliveryTone(x.status)}`}>{t(`status_${x.status}`)}</span>
                      </td>
                      <td>{x.http_status ? <StatusBadge status={x.http_status} /> : <span className="muted">—</span>}</td>
                      <td className="num">{millis(x.latency_ms)}</td>
                      <td className="alerts-error">{x.error ?? <span className="muted">—</span>}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </QueryState>
      </section>

      {adding && <AddChannelDialog onClose={() => setAdding(false)} />}
      <ConfirmAction
        target={deleting}
        title={t('delete_title', { name: deleting?.name ?? '' })}
        message={t('delete_message')}
        confirmLabel={t('delete')}
        run={(c) => unwrap(client.DELETE('/api/v1/alerts/channels/{id}', { params: { path: { id: c.id } } }))}
        onDone={(c) => {
          void queries.invalidateQueries({ queryKey: ['alert-channels'] });
          toast(t('deleted', { name: c.name }));
        }}
        onClose={() => setDeleting(null)}
      />
    </div>
  );
}
