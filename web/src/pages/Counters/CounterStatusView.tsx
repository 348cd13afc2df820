// One counter: used, remaining and quota, with a gauge.
import { useTranslation } from 'react-i18next';
import { compact, dateTime, integer, percent, relative } from '../../format';
import { Gauge } from '../../components/charts';
import { ns } from './messages';
import type { CounterStatus } from './model';

export function CounterStatusView({ counter, readonly }: { counter: CounterStatus; readonly: boolean }) {
  const { t } = useTranslation(ns);
  const ratio = counter.quota > 0 ? counter.used / counter.quota : 0;
  return (
    <>
      {readonly && <div className="alert info">{t('readonly')}</div>}
      <div className="counters-status">
        <Gauge
          ratio={ratio}
          label={t('gauge_label', { name: counter.name })}
          caption={
            <>
              <strong>{percent(counter.percent / 100)}</strong>
              <span className="muted">{t('of_quota', { used: compact(counter.used), quota: compact(counter.quota) })}</span>
            </>
          }
        />
        <dl className="details counters-figures">
          <dt>{t('used')}</dt>
          <dd>
            <span className="counters-big">{integer(counter.used)}</span>{' '}
            {counter.used > counter.quota && <span className="badge danger">{t('over_quota')}</span>}
          </dd>
          <dt>{t('quota')}</dt>
          <dd>{integer(counter.quota)}</dd>
          <dt>{t('percent')}</dt>
          <dd>{percent(counter.percent / 100, undefined, 2)}</dd>
          <dt>{t('remaining')}</dt>
          <dd>{integer(counter.remaining)}</dd>
          <dt>{t('sessions')}</dt>
          <dd>{integer(counter.sessions)}</dd>
          <dt>{t('last_update')}</dt>
          <dd>
            {counter.last_update ? (
              <time dateTime={new Date(counter.last_update).toISOString()} title={dateTime(counter.last_update)}>
                {relative(counter.last_update)}
              </time>
            ) : (
              '—'
            )}
          </dd>
        </dl>
      </div>
    </>
  );
}
