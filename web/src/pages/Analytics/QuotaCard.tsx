// The token quotas in view: how much of each is used.
import { Link } from 'react-router';
import type { UseQueryResult } from '@tanstack/react-query';
import type { Schemas } from '../../api/client';
import { Gauge } from '../../components/charts';
import { Num, QueryState } from '../../components/ui';
import { compact, date, integer, percent } from '../../format';
import type { T } from './types';

export function QuotaCard({
  quotas,
  teamId,
  teamName,
  isAdmin,
  t,
}: {
  quotas: UseQueryResult<Schemas['QuotasView']>;
  teamId?: number;
  teamName: (id: number) => string;
  isAdmin: boolean;
  t: T;
}) {
  return (
    <section className="card" aria-labelledby="an-quota">
      <h2 id="an-quota">{t('quota_title')}</h2>
      <QueryState query={quotas} isEmpty={(d) => !d.instance && d.teams.length === 0}>
        {(d) => {
          const all = [...(d.instance ? [d.instance] : []), ...d.teams];
          const primary =
            (teamId ? d.teams.find((q) => q.team_id === teamId) : undefined) ??
            (teamId ? undefined : d.instance) ??
            d.teams.find((q) => q.quota_tokens != null) ??
            all[0];
          const scopeName = (q: Schemas['QuotaView']) =>
            q.scope === 'instance' ? t('quota_instance') : t('quota_team', { name: teamName(q.team_id ?? 0) });
          return (
            <>
              {primary && <QuotaDetail q={primary} name={scopeName(primary)} isAdmin={isAdmin} t={t} />}
              {all.length > 1 && (
                <details className="quota-all">
                  <summary>{t('all_quotas')}</summary>
                  <div className="table-wrap">
                    <table>
                      <thead>
                        <tr>
                          <th scope="col">{t('scope')}</th>
                          <th scope="col" className="num">
                            {t('used')}
                          </th>
                          <th scope="col" className="num">
                            {t('quota')}
                          </th>
                          <th scope="col" className="num">
                            %
                          </th>
                        </tr>
                      </thead>
                      <tbody>
                        {all.map((q) => (
                          <tr key={`${q.scope}:${q.team_id ?? ''}`}>
                            <th scope="row">{scopeName(q)}</th>
                            <td className="num">
                              <Num value={q.used_tokens} />
                            </td>
                            <td className="num">{q.quota_tokens == null ? '—' : <Num value={q.quota_tokens} />}</td>
                            <td className="num">{q.usage_percent == null ? '—' : percent(q.usage_percent / 100)}</td>
                          </tr>
                        ))}
                      </tbody>
                    </table>
                  </div>
                </details>
              )}
            </>
          );
        }}
      </QueryState>
    </section>
  );
}

function QuotaDetail({ q, name, isAdmin, t }: { q: Schemas['QuotaView']; name: string; isAdmin: boolean; t: T }) {
  const period = q.period === 'total' ? t('period_total') : t('period_month', { date: date(q.period_start) });
  if (q.quota_tokens == null) {
    return (
      <div className="quota-none">
        <p className="quota-scope muted">{name}</p>
        <p>
          <strong>{t('no_quota')}</strong>
        </p>
        <p className="muted">{t('no_quota_hint', { used: compact(q.used_tokens) })}</p>
        <p className="muted small-text">{period}</p>
        {isAdmin && <Link to="/settings">{t('set_quota')}</Link>}
      </div>
    );
  }
  const ratio = q.quota_tokens > 0 ? q.used_tokens / q.quota_tokens : 0;
  return (
    <div>
      <p className="quota-scope muted">{name}</p>
      <Gauge
        ratio={ratio}
        label={`${t('quota_gauge')}: ${name}`}
        caption={
          <>
            <strong>{percent((q.usage_percent ?? ratio * 100) / 100)}</strong>
            <span className="muted">{t('of_quota', { used: compact(q.used_tokens), quota: compact(q.quota_tokens) })}</span>
          </>
        }
      />
      <dl className="details quota-details">
        <dt>{t('remaining')}</dt>
        <dd>{integer(q.remaining_tokens)}</dd>
        <dt>{t('used')}</dt>
        <dd>{integer(q.used_tokens)}</dd>
        <dt>{t('quota')}</dt>
        <dd>{integer(q.quota_tokens)}</dd>
        <dt>{t('period')}</dt>
        <dd>{period}</dd>
        <dt>{t('calls_in_period')}</dt>
        <dd>{integer(q.calls)}</dd>
      </dl>
    </div>
  );
}
