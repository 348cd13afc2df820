// The counters the caller can see, each with its team and how much of its quota is used.
import { Link } from 'react-router';
import type { UseQueryResult } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { useAuth } from '../../auth';
import { compact, percent } from '../../format';
import { Empty, ErrorState, Loading } from '../../components/ui';
import { ns } from './messages';
import { type CounterStatus, DEFAULT_COUNTER } from './model';

export function TeamBadge({ teamId }: { teamId: number | null }) {
  const { t } = useTranslation(ns);
  const { session } = useAuth();
  if (teamId === null) return <span className="badge">{t('instance_wide')}</span>;
  const name = session?.memberships.find((m) => m.team_id === teamId)?.team_name;
  return <span className="badge info">{name ?? t('team_n', { id: teamId })}</span>;
}

export function CounterList({
  list,
  selected,
  onSelect,
}: {
  list: UseQueryResult<CounterStatus[]>;
  selected: string;
  onSelect: (name: string) => void;
}) {
  const { t } = useTranslation(ns);
  return (
    <nav className="card counters-list" aria-labelledby="counters-list-title">
      <h2 id="counters-list-title">{t('all_counters')}</h2>
      {list.isPending ? (
        <Loading />
      ) : list.isError ? (
        <ErrorState error={list.error} onRetry={() => void list.refetch()} />
      ) : list.data.length === 0 ? (
        <Empty>{t('no_counters')}</Empty>
      ) : (
        <ul>
          {list.data.map((c) => {
            const ratio = c.quota > 0 ? c.used / c.quota : 0;
            const tone = ratio >= 0.9 ? 'danger' : ratio >= 0.75 ? 'warning' : '';
            return (
              <li key={c.name}>
                <Link
                  to={c.name === DEFAULT_COUNTER ? '?' : `?counter=${encodeURIComponent(c.name)}`}
                  aria-current={c.name === selected ? 'page' : undefined}
                  onClick={(e) => {
                    e.preventDefault();
                    onSelect(c.name);
                  }}
                >
                  <span className="counters-list-name">
                    <span className="mono">{c.name}</span>
                    <span className="muted">{percent(c.percent / 100)}</span>
                  </span>
                  <span className={`counters-bar ${tone}`} aria-hidden="true">
                    <span style={{ width: `${Math.min(100, Math.max(0, ratio * 100))}%` }} />
                  </span>
                  <span className="muted counters-list-figures">
                    {t('of_quota', { used: compact(c.used), quota: compact(c.quota) })}
                  </span>
                </Link>
              </li>
            );
          })}
        </ul>
      )}
    </nav>
  );
}
