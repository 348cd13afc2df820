// The detail drawer: one call, fetched by id, with every recorded field.
import type { ReactNode } from 'react';
import { useQuery } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { client, unwrap } from '../../api/client';
import { CopyButton, Drawer, ErrorState, Loading, StatusBadge } from '../../components/ui';
import { dateTime, integer, millis, relative } from '../../format';
import { rowTone } from './LogTable';
import type { LogEntry, LogFilters } from './filters';
import { ns } from './messages';
import { Cost } from '../../components/Cost';

export function LogDrawer({
  id,
  onClose,
  keyNames,
  teamNames,
  routeNames,
  onFilter,
}: {
  id: number | null;
  onClose: () => void;
  keyNames: Map<number, string>;
  teamNames: Map<number, string>;
  routeNames: Map<number, string>;
  onFilter: (change: Partial<LogFilters>) => void;
}) {
  const { t } = useTranslation(ns);
  const entry = useQuery({
    queryKey: ['log', id],
    queryFn: () => unwrap(client.GET('/api/v1/logs/{id}', { params: { path: { id: id as number } } })),
    enabled: id !== null,
    staleTime: Infinity,
  });
  return (
    <Drawer open={id !== null} onClose={onClose} title={t('details')}>
      {entry.isPending ? (
        <Loading />
      ) : entry.isError ? (
        <ErrorState error={entry.error} onRetry={() => void entry.refetch()} />
      ) : (
        <LogDetails
          e={entry.data}
          keyNames={keyNames}
          teamNames={teamNames}
          routeNames={routeNames}
          onFilter={onFilter}
        />
      )}
    </Drawer>
  );
}

export function LogDetails({
  e,
  keyNames,
  teamNames,
  routeNames,
  onFilter,
}: {
  e: LogEntry;
  keyNames: Map<number, string>;
  teamNames: Map<number, string>;
  routeNames: Map<number, string>;
  onFilter?: (change: Partial<LogFilters>) => void;
}) {
  const { t } = useTranslation(ns);
  const dash = <span className="muted">{t('none')}</span>;
  const named = (name: string | undefined | null, id: number | null | undefined): ReactNode =>
    id === null || id === undefined ? (
      dash
    ) : (
      <>
        {name ?? `#${id}`} <span className="muted">#{id}</span>
      </>
    );
  // The gateway's own share: the total less the upstream's time to its last byte (to its first
  // byte for calls recorded without it, where a streamed body's time still counts in).
  const upstreamEnd = e.upstream_last_byte_ms ?? e.upstream_latency_ms;
  const overhead =
    upstreamEnd !== null && upstreamEnd !== undefined ? Math.max(0, e.latency_ms - upstreamEnd) : null;
  const tone = rowTone(e);
  return (
    <div className="stack logs-details">
      <div className="row">
        <StatusBadge status={e.status} />
        <strong className="mono logs-details-path">
          {e.method} {e.path}
        </strong>
      </div>
      <div className="muted">
        <time dateTime={new Date(e.ts).toISOString()}>{dateTime(e.ts)}</time> · {relative(e.ts)}
      </div>
      {e.error && (
        <div className={`alert ${tone === 'warning' ? 'warning' : 'error'}`} role="note">
          <strong>{t('d_error')}:</strong> {e.error}
        </div>
      )}

      <section>
        <h3>{t('section_request')}</h3>
        <dl className="details">
          <dt>{t('d_id')}</dt>
          <dd className="mono">{e.id}</dd>
          <dt>{t('d_request_id')}</dt>
          <dd>
            {e.request_id ? (
              <span className="row">
                <span className="mono">{e.request_id}</span>
                <CopyButton text={e.request_id} />
              </span>
            ) : (
              dash
            )}
          </dd>
          <dt>{t('d_time')}</dt>
          <dd>
            {dateTime(e.ts)} <span className="muted mono">({e.ts})</span>
          </dd>
          <dt>{t('d_source')}</dt>
          <dd>
            <span className="badge">{e.source}</span>
          </dd>
          <dt>{t('d_key')}</dt>
          <dd>
            {named(e.key_id ? keyNames.get(e.key_id) : null, e.key_id)}
            {e.key_id && onFilter && (
              <button type="button" className="small" onClick={() => onFilter({ key_id: e.key_id ?? undefined })}>
                {t('only_this_key')}
              </button>
            )}
          </dd>
          <dt>{t('d_team')}</dt>
          <dd>{named(e.team_id ? teamNames.get(e.team_id) : null, e.team_id)}</dd>
          <dt>{t('d_route')}</dt>
          <dd>
            {e.route_id ? named(e.route ?? routeNames.get(e.route_id), e.route_id) : (e.route ?? dash)}
            {e.route_id && onFilter && (
              <button
                type="button"
                className="small"
                onClick={() => onFilter({ route_id: e.route_id ?? undefined })}
              >
                {t('only_this_route')}
              </button>
            )}
          </dd>
          <dt>{t('d_method')}</dt>
          <dd className="mono">{e.method}</dd>
          <dt>{t('d_path')}</dt>
          <dd className="mono">{e.path}</dd>
          <dt>{t('d_status')}</dt>
          <dd>
            <StatusBadge status={e.status} />
            {onFilter && (
              <button type="button" className="small" onClick={() => onFilter({ status: String(e.status) })}>
                {t('only_this_status')}
              </button>
            )}
          </dd>
          <dt>{t('d_model')}</dt>
          <dd className="mono">{e.model ?? dash}</dd>
        </dl>
      </section>

      <section>
        <h3>{t('section_timing')}</h3>
        <dl className="details">
          <dt>{t('d_latency')}</dt>
          <dd>{millis(e.latency_ms)}</dd>
          <dt>{t('d_upstream')}</dt>
          <dd>{millis(e.upstream_latency_ms)}</dd>
          <dt>{t('d_upstream_last_byte')}</dt>
          <dd>{millis(e.upstream_last_byte_ms)}</dd>
          <dt>{t('d_overhead')}</dt>
          <dd>{millis(overhead)}</dd>
        </dl>
      </section>

      {e.attempts && e.attempts.length > 0 && (
        <section>
          <h3>{t('section_attempts')}</h3>
          <p className="muted">{t('attempts_note')}</p>
          <table className="logs-attempts">
            <thead>
              <tr>
                <th scope="col">{t('a_number')}</th>
                <th scope="col">{t('a_target')}</th>
                <th scope="col">{t('a_model')}</th>
                <th scope="col">{t('a_status')}</th>
                <th scope="col">{t('a_time')}</th>
              </tr>
            </thead>
            <tbody>
              {e.attempts.map((a, i) => (
                <tr key={i}>
                  <td>{i + 1}</td>
                  <td className="mono">{a.target}</td>
                  <td className="mono">{a.model}</td>
                  <td>
                    <StatusBadge status={a.status} />
                  </td>
                  <td>{millis(a.ms)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      )}

      <section>
        <h3>{t('section_tokens')}</h3>
        <dl className="details">
          <dt>{t('d_prompt')}</dt>
          <dd>{integer(e.prompt_tokens)}</dd>
          <dt>{t('d_cached')}</dt>
          <dd>{integer(e.cached_tokens)}</dd>
          <dt>{t('d_completion')}</dt>
          <dd>{integer(e.completion_tokens)}</dd>
          <dt>{t('d_reasoning')}</dt>
          <dd>{integer(e.reasoning_tokens)}</dd>
          <dt>{t('d_total')}</dt>
          <dd>
            <strong>{integer(e.total_tokens)}</strong>
          </dd>
          <dt>{t('d_estimated')}</dt>
          <dd>
            {e.estimated ? <span className="badge warning">{t('estimated')}</span> : <span>{t('reported')}</span>}
          </dd>
          <dt>{t('d_cost')}</dt>
          <dd>
            <Cost usd={e.cost_usd ?? null} />
          </dd>
        </dl>
      </section>

      <section>
        <h3>{t('section_client')}</h3>
        <dl className="details">
          <dt>{t('d_ip')}</dt>
          <dd className="mono">{e.client_ip ?? dash}</dd>
          <dt>{t('d_user_agent')}</dt>
          <dd className="mono">{e.user_agent ?? dash}</dd>
        </dl>
      </section>
    </div>
  );
}
