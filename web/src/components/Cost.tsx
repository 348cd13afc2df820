// A cost as people must read it: "no price" when the calls used tokens of a model without a
// price (never $0), and how many calls had none beside a figure.
import { useTranslation } from 'react-i18next';
import { usd } from '../format';

export function Cost({ usd: amount, unpriced }: { usd: number | null | undefined; unpriced?: number }) {
  const { t } = useTranslation('common');
  const none = amount === null || ((unpriced ?? 0) > 0 && !amount);
  if (none) {
    return (
      <span className="muted" title={t('no_price_help')}>
        {t('no_price')}
      </span>
    );
  }
  return (
    <>
      {usd(amount)}
      {unpriced ? (
        <span className="muted" title={t('no_price_help')}>
          {' '}
          {t('no_price_calls', { count: unpriced })}
        </span>
      ) : null}
    </>
  );
}
