// A top-N card: a ranked bar list with a link onwards per item.
import type { UseQueryResult } from '@tanstack/react-query';
import { BarList } from '../../components/charts';
import { Num, QueryState } from '../../components/ui';
import { millis, percent } from '../../format';
import type { Order } from './filters';
import type { Item, T } from './types';
import { Cost } from '../../components/Cost';

export function TopCard({
  id,
  title,
  query,
  metricLabel,
  metricOf,
  onPick,
  sortBy,
  t,
}: {
  id: string;
  title: string;
  query: UseQueryResult<Item[]>;
  metricLabel: string;
  metricOf: (i: Item) => number;
  onPick: (i: Item) => void;
  /** Re-rank client-side (the models list is fetched once, by tokens). */
  sortBy?: Order;
  t: T;
}) {
  return (
    <section className="card" aria-labelledby={id}>
      <h2 id={id}>{title}</h2>
      <QueryState query={query} empty={t('no_calls')}>
        {(data) => {
          const rows = (sortBy ? [...data].sort((a, b) => metricOf(b) - metricOf(a)) : data).slice(0, 10);
          return (
            <>
              <BarList
                label={t('top_chart', { title, metric: metricLabel })}
                items={rows.map((i) => ({ label: i.name === '(none)' ? t('none') : i.name, value: metricOf(i) }))}
              />
              <div className="table-wrap top-table">
                <table>
                  <thead>
                    <tr>
                      <th scope="col">{t('name')}</th>
                      <th scope="col" className="num">
                        {t('calls')}
                      </th>
                      <th scope="col" className="num">
                        {t('tokens')}
                      </th>
                      <th scope="col" className="num">
                        {t('success_rate')}
                      </th>
                      <th scope="col" className="num">
                        {t('p95')}
                      </th>
                      <th scope="col" className="num">
                        {t('cost')}
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {rows.map((i) => (
                      <tr key={`${i.id ?? ''}:${i.name}`}>
                        <th scope="row" className="name-cell">
                          {i.name === '(none)' || i.id === 0 ? (
                            <span className="muted">{t('none')}</span>
                          ) : (
                            <button
                              type="button"
                              className="link-button"
                              onClick={() => onPick(i)}
                              title={t('filter_by', { name: i.name })}
                            >
                              {i.name}
                            </button>
                          )}
                        </th>
                        <td className="num">
                          <Num value={i.calls} />
                        </td>
                        <td className="num">
                          <Num value={i.total_tokens} />
                        </td>
                        <td className="num">{percent(i.success_rate)}</td>
                        <td className="num">{millis(i.p95_latency_ms)}</td>
                        <td className="num"><Cost usd={i.cost_usd} unpriced={i.unpriced_calls} /></td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            </>
          );
        }}
      </QueryState>
    </section>
  );
}
