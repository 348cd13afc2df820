// Form parts shared by the create and edit dialogs: expiry and allowed routes.
import type { ReactNode } from 'react';
import { useTranslation } from 'react-i18next';
import { Field } from '../../components/ui';
import { dateTime } from '../../format';
import { localDay } from '../../localTime';
import { ns } from './messages';
import { type ExpiryChoice, expiryTimestamp, routesFor, type RouteView } from './model';

export function ExpiryPicker({
  choice,
  day,
  onChoice,
  onDay,
  error,
  current,
}: {
  choice: ExpiryChoice;
  day: string;
  onChoice: (c: ExpiryChoice) => void;
  onDay: (d: string) => void;
  error?: string | null;
  current?: ReactNode;
}) {
  const { t } = useTranslation(ns);
  const preview = expiryTimestamp(choice, day, Date.now());
  return (
    <>
      <Field label={t('expiry')} help={current} error={choice === 'date' ? null : error}>
        <select value={choice} onChange={(e) => onChoice(e.target.value as ExpiryChoice)}>
          <option value="never">{t('expiry_never')}</option>
          {(['30', '90', '365'] as const).map((d) => (
            <option key={d} value={d}>
              {t('expiry_days', { count: Number(d) })}
            </option>
          ))}
          <option value="date">{t('expiry_date')}</option>
        </select>
      </Field>
      {choice === 'date' && (
        <Field label={t('expiry_on')} error={error}>
          <input
            type="date"
            value={day}
            min={localDay(Date.now())}
            required
            aria-invalid={!!error || undefined}
            onChange={(e) => onDay(e.target.value)}
          />
        </Field>
      )}
      {typeof preview === 'number' && <p className="muted keys-preview">{t('expiry_at', { when: dateTime(preview) })}</p>}
    </>
  );
}

export function RoutePicker({
  routes,
  teamId,
  restricted,
  selected,
  onRestricted,
  onSelected,
  error,
}: {
  routes: RouteView[];
  teamId: number | undefined;
  restricted: boolean;
  selected: number[];
  onRestricted: (v: boolean) => void;
  onSelected: (ids: number[]) => void;
  error?: string | null;
}) {
  const { t } = useTranslation(ns);
  const available = routesFor(routes, teamId);
  return (
    <fieldset className="keys-routes-picker">
      <legend>{t('routes')}</legend>
      <label className="row">
        <input type="radio" name="routes-mode" checked={!restricted} onChange={() => onRestricted(false)} />
        {t('routes_all')}
      </label>
      <label className="row">
        <input type="radio" name="routes-mode" checked={restricted} onChange={() => onRestricted(true)} />
        {t('routes_some')}
      </label>
      {restricted &&
        (available.length === 0 ? (
          <p className="muted">{t('routes_none_available')}</p>
        ) : (
          <ul className="keys-route-options">
            {available.map((r) => (
              <li key={r.id}>
                <label className="row">
                  <input
                    type="checkbox"
                    checked={selected.includes(r.id)}
                    onChange={(e) =>
                      onSelected(e.target.checked ? [...selected, r.id] : selected.filter((id) => id !== r.id))
                    }
                  />
                  <span>{r.name}</span>
                  <code className="muted">{r.prefix}</code>
                  {(r.team_id === null || r.team_id === undefined) && <span className="badge">{t('shared')}</span>}
                </label>
              </li>
            ))}
          </ul>
        ))}
      {error && (
        <small className="error" role="alert">
          {error}
        </small>
      )}
    </fieldset>
  );
}

export function ModelsField({ value, onChange, error }: { value: string; onChange: (v: string) => void; error?: string | null }) {
  const { t } = useTranslation(ns);
  return (
    <Field label={t('models')} help={t('models_help')} error={error}>
      <input
        value={value}
        placeholder="gpt-4o*, claude-*"
        aria-invalid={!!error || undefined}
        onChange={(e) => onChange(e.target.value)}
      />
    </Field>
  );
}
