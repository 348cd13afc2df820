// Token counters (SPEC "Token-count sync"): a tool's cumulative token figure recorded against a
// quota. The record dialog accepts every format the server parses (350K, 35万, "350,000 tokens
// used", full-width digits…) and shows, while typing, what the server understood and what the
// reading will do to the counter (an increment, or a reset when it is below what was used).
import { useState } from 'react';
import { useSearchParams } from 'react-router';
import { useQuery } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { ApiError, client, unwrap } from '../../api/client';
import { usePermissions } from '../../auth';
import { integer } from '../../format';
import { ErrorState, Loading, PageHeader } from '../../components/ui';
import { CliHints } from './CliHints';
import { CounterList, TeamBadge } from './CounterList';
import { CounterStatusView } from './CounterStatusView';
import { History } from './History';
import { QuotaDialog } from './QuotaDialog';
import { RecordDialog } from './RecordDialog';
import { ns } from './messages';
import { counterRights, DEFAULT_COUNTER, DEFAULT_QUOTA, statusQueryKey } from './model';

export default function CountersPage() {
  const { t } = useTranslation([ns, 'common']);
  const can = usePermissions();
  const [params, setParams] = useSearchParams();
  const selected = params.get('counter') || DEFAULT_COUNTER;
  const [dialog, setDialog] = useState<null | 'record' | 'new' | 'quota'>(null);

  const list = useQuery({
    queryKey: ['counters', 'list'],
    queryFn: () => unwrap(client.GET('/api/v1/counters')),
  });
  // A counter exists once it has a first reading: when the list says it does not, there is no
  // status to ask for (the server would answer 404).
  const listed = list.data?.some((c) => c.name === selected) ?? false;
  const status = useQuery({
    queryKey: statusQueryKey(selected),
    queryFn: () => unwrap(client.GET('/api/v1/counters/{name}', { params: { path: { name: selected } } })),
    enabled: list.isSuccess ? listed : list.isError,
    retry: (count, error) => !(error instanceof ApiError && error.status === 404) && count < 2,
  });
  const missing =
    (list.isSuccess && !listed && !status.data) || (status.error instanceof ApiError && status.error.status === 404);
  const counter = status.data ?? null;
  const rights = counterRights(can, counter);

  const select = (name: string) => {
    const next = new URLSearchParams(params);
    if (name === DEFAULT_COUNTER) next.delete('counter');
    else next.set('counter', name);
    setParams(next);
  };

  return (
    <div className="stack">
      <PageHeader title={t('title')} subtitle={t('subtitle')} lede>
        <button type="button" onClick={() => setDialog('new')}>
          {t('new_counter')}
        </button>
        {rights.record && (
          <button type="button" className="primary" onClick={() => setDialog('record')}>
            {t('record')}
          </button>
        )}
      </PageHeader>

      <div className="counters-layout">
        <CounterList list={list} selected={selected} onSelect={select} />

        <div className="stack counters-main">
          <section className="card" aria-labelledby="counter-status-title">
            <div className="row counters-status-head">
              <h2 id="counter-status-title" className="mono">
                {selected}
              </h2>
              {counter && <TeamBadge teamId={counter.team_id ?? null} />}
              <span className="spacer" />
              {rights.setQuota && (
                <button type="button" className="small" onClick={() => setDialog('quota')}>
                  {t('set_quota')}
                </button>
              )}
            </div>
            {missing ? (
              <div className="state empty">
                <p>{t('not_created', { name: selected })}</p>
                <p>{rights.record ? t('not_created_hint', { quota: integer(DEFAULT_QUOTA) }) : t('not_created_readonly')}</p>
                {rights.record && (
                  <button type="button" className="primary" onClick={() => setDialog('record')}>
                    {t('record')}
                  </button>
                )}
              </div>
            ) : status.isError ? (
              <ErrorState error={status.error} onRetry={() => void status.refetch()} />
            ) : status.isPending ? (
              <Loading />
            ) : (
              counter && <CounterStatusView counter={counter} readonly={!rights.record} />
            )}
          </section>

          {counter && <History name={selected} />}

          <CliHints name={selected} />
        </div>
      </div>

      <RecordDialog
        open={dialog === 'record' || dialog === 'new'}
        mode={dialog === 'new' ? 'new' : 'record'}
        counterName={selected}
        counters={list.data ?? []}
        current={counter}
        onClose={() => setDialog(null)}
        onRecorded={(name) => {
          setDialog(null);
          if (name !== selected) select(name);
        }}
      />
      {counter && <QuotaDialog open={dialog === 'quota'} counter={counter} onClose={() => setDialog(null)} />}
    </div>
  );
}
