// The limits on one key, team or route, as small badges with their use (coloured at the alert
// thresholds), linking to the Limits page. Every badge reads the one shared `limits` query.
import { useCallback } from 'react';
import { Link } from 'react-router';
import { useTranslation } from 'react-i18next';
import { REFERENCE_STALE_MS, useLimits } from '../api/queries';
import type { LimitKind, Scope } from '../api/vocabulary';
import { compact, percent, usd } from '../format';
import { ns } from '../pages/Limits/messages';
import { describeKind, limitsOn, toneOf, type Translate } from '../pages/Limits/model';

/** "60 requests / minute" for a kind, in the console's language. */
export function useDescribeKind(): (kind: LimitKind) => string {
  const { t } = useTranslation(ns);
  return useCallback(
    (kind: LimitKind) =>
      describeKind(t as Translate, kind, (n) => compact(n), (n) => usd(n)),
    [t],
  );
}

export function LimitBadges({ scope }: { scope: Scope }) {
  const { t } = useTranslation(ns);
  const describe = useDescribeKind();
  const limits = useLimits(undefined, { staleTime: REFERENCE_STALE_MS });
  if (!limits.data) return null;
  const mine = limitsOn(limits.data.limits, scope);
  if (mine.length === 0) return <span className="muted">{t('no_limits')}</span>;
  const to = scope.type === 'instance' ? '/limits' : `/limits?scope=${scope.type}&id=${scope.id}`;
  return (
    <ul className="limit-badges" aria-label={t('badges_label')}>
      {mine.map((l) => {
        const text = describe(l.kind);
        const pct = l.usage ? percent(l.usage.percent / 100, undefined, 0) : null;
        const tone = toneOf(l.usage?.percent, l.alert_at);
        return (
          <li key={l.id}>
            <Link
              to={to}
              className={`badge ${tone || 'info'}`}
              title={t('badge_title', {
                limit: text,
                percent: pct ?? '—',
                enforcement: t(l.enforcement === 'hard' ? 'badge_hard' : 'badge_soft'),
              })}
            >
              {text}
              {pct !== null && ` · ${pct}`}
            </Link>
          </li>
        );
      })}
    </ul>
  );
}
