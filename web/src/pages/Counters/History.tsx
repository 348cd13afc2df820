// A counter's readings, newest first, loaded a page at a time.
import { useMemo } from 'react';
import { useInfiniteQuery } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { client, unwrap } from '../../api/client';
import { compact, dateTime, integer, relative } from '../../format';
import { Empty, ErrorState, Loading } from '../../components/ui';
import { ns } from './messages';
import { HISTORY_PAGE, type ReadingView, SYNC_TYPES } from './model';

const syncTone: Record<string, string> = {
  manual: 'info',
  clipboard: '',
  estimate: 'warning',
  import: '',
  api: 'success',
};

function SyncBadge({ type }: { type: string }) {
  const { t } = useTranslation(ns);
  const known = (SYNC_TYPES as readonly string[]).includes(type);
  return <span className={`badge ${syncTone[type] ?? ''}`}>{known ? t(`sync_${type}`) : type}</span>;
}

export function History({ name }: { name: string }) {
  const { t } = useTranslation(ns);
  const history = useInfiniteQuery({
    queryKey: ['counters', 'readings', name],
    initialPageParam: undefined as number | undefined,
    queryFn: ({ pageParam }) =>
      unwrap(
        client.GET('/api/v1/counters/{name}/readings', {
          params: { path: { name }, query: { before: pageParam, limit: HISTORY_PAGE } },
        }),
      ),
    getNextPageParam: (last: ReadingView[]) => (last.length === HISTORY_PAGE ? last[last.length - 1]?.id : undefined),
  });
  const readings = useMemo(() => history.data?.pages.flat() ?? [], [history.data]);

  return (
    <section className="card" aria-labelledby="counter-history-title">
      <div className="row">
        <h2 id="counter-history-title">{t('history')}</h2>
        <span className="muted counters-hint">{t('history_hint')}</span>
      </div>
      {history.isPending ? (
        <Loading />
      ) : history.isError ? (
        <ErrorState error={history.error} onRetry={() => void history.refetch()} />
      ) : readings.length === 0 ? (
        <Empty>{t('no_history')}</Empty>
      ) : (
        <>
          <ol className="counters-stream">
            {readings.map((r) => (
              <ReadingItem key={r.id} reading={r} />
            ))}
          </ol>
          <div className="row counters-more">
            {history.hasNextPage ? (
              <button type="button" onClick={() => void history.fetchNextPage()} disabled={history.isFetchingNextPage}>
                {history.isFetchingNextPage ? t('loading_more') : t('load_more')}
              </button>
            ) : (
              readings.length > HISTORY_PAGE && <span className="muted">{t('end_of_history')}</span>
            )}
          </div>
        </>
      )}
    </section>
  );
}

function ReadingItem({ reading: r }: { reading: ReadingView }) {
  const { t } = useTranslation(ns);
  return (
    <li className={r.reset ? 'reset' : ''}>
      <div className="counters-stream-head">
        {r.reset ? (
          <span className="badge warning" title={t('reset_to', { value: integer(r.reading) })}>
            ↺ {t('reset')}
          </span>
        ) : (
          <span className="counters-increment" title={integer(r.increment)}>
            +{compact(r.increment)}
          </span>
        )}
        <span className="muted">{t('reading_of', { value: integer(r.reading) })}</span>
        <SyncBadge type={r.sync_type} />
        <span className="spacer" />
        <time dateTime={new Date(r.ts).toISOString()} title={relative(r.ts)} className="muted">
          {dateTime(r.ts)}
        </time>
      </div>
      <div className={r.event ? 'counters-event' : 'counters-event muted'}>{r.event || t('no_event')}</div>
      {(r.conversation_id || r.actor) && (
        <div className="counters-meta muted">
          {r.conversation_id && (
            <span>
              {t('conversation')}: <code>{r.conversation_id}</code>
            </span>
          )}
          {r.actor && <span>{t('by', { actor: r.actor })}</span>}
        </div>
      )}
    </li>
  );
}
