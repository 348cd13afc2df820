// Tokens per model, as a table with each model's share.
import type { Schemas } from '../../api/client';
import { Num } from '../../components/ui';
import type { Item, T } from './types';
import { Cost } from '../../components/Cost';

export function ModelsTable({ items, total, t }: { items: Item[]; total?: Schemas['SummaryView']; t: T }) {
  return (
    <div className="table-wrap" tabIndex={0} role="region" aria-label={t('models_table')}>
      <table aria-label={t('models_table')}>
        <thead>
          <tr>
            <th scope="col">{t('model')}</th>
            <th scope="col" className="num">
              {t('calls')}
            </th>
            <th scope="col" className="num">
              {t('prompt_tokens')}
            </th>
            <th scope="col" className="num">
              {t('completion_tokens')}
            </th>
            <th scope="col" className="num">
              {t('cached_tokens')}
            </th>
            <th scope="col" className="num">
              {t('reasoning_tokens')}
            </th>
            <th scope="col" className="num">
              {t('total_tokens')}
            </th>
            <th scope="col" className="num">
              {t('cost')}
            </th>
          </tr>
        </thead>
        <tbody>
          {items.map((m) => (
            <tr key={m.name}>
              <th scope="row" className="mono name-cell">
                {m.name === '(none)' ? <span className="muted">{t('none')}</span> : m.name}
              </th>
              <td className="num">
                <Num value={m.calls} />
              </td>
              <td className="num">
                <Num value={m.prompt_tokens} />
              </td>
              <td className="num">
                <Num value={m.completion_tokens} />
              </td>
              <td className="num">
                <Num value={m.cached_tokens} />
              </td>
              <td className="num">
                <Num value={m.reasoning_tokens} />
              </td>
              <td className="num">
                <Num value={m.total_tokens} />
              </td>
              <td className="num"><Cost usd={m.cost_usd} unpriced={m.unpriced_calls} /></td>
            </tr>
          ))}
        </tbody>
        {total && items.length > 1 && (
          <tfoot>
            <tr>
              <th scope="row">{t('all_models_row')}</th>
              <td className="num">
                <Num value={total.calls} />
              </td>
              <td className="num">
                <Num value={total.prompt_tokens} />
              </td>
              <td className="num">
                <Num value={total.completion_tokens} />
              </td>
              <td className="num">
                <Num value={total.cached_tokens} />
              </td>
              <td className="num">
                <Num value={total.reasoning_tokens} />
              </td>
              <td className="num">
                <Num value={total.total_tokens} />
              </td>
              <td className="num"><Cost usd={total.cost_usd} unpriced={total.unpriced_calls} /></td>
            </tr>
          </tfoot>
        )}
      </table>
    </div>
  );
}
