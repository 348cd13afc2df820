// The filters: range (presets or custom), team, key, route, model, status class, order.
import { useEffect, useId, useState } from 'react';
import type { Schemas } from '../../api/client';
import { NamedOptions, Segmented, TeamOptions } from '../../components/ui';
import { fromLocalInput, toLocalInput } from '../../localTime';
import { positiveInt } from '../../params';
import { type AnalyticsFilters, PRESETS, type RangeError, rangeError, type StatusClass, windowOf } from './filters';
import type { T } from './types';

export function FilterBar({
  filters,
  update,
  onClear,
  teams,
  routes,
  keys,
  models,
  invalid,
  t,
  now,
}: {
  filters: AnalyticsFilters;
  update: (patch: Partial<AnalyticsFilters>) => void;
  onClear: () => void;
  teams: Schemas['TeamView'][];
  routes: Schemas['RouteView'][];
  keys: Schemas['KeyView'][];
  models: string[];
  invalid: RangeError | null;
  t: T;
  now: number;
}) {
  const [from, setFrom] = useState(() => toLocalInput(filters.from));
  const [to, setTo] = useState(() => toLocalInput(filters.to));
  useEffect(() => {
    setFrom(toLocalInput(filters.from));
    setTo(toLocalInput(filters.to));
  }, [filters.from, filters.to]);
  const errorId = useId();
  const draft = { range: 'custom' as const, from: fromLocalInput(from), to: fromLocalInput(to) };
  const draftError = rangeError(draft);
  const shownError = filters.range === 'custom' ? (draftError ?? invalid) : null;
  const any = filters.team_id || filters.key_id || filters.route_id || filters.model || filters.status_class;
  const keyOptions = filters.team_id ? keys.filter((k) => k.team_id === filters.team_id) : keys;
  const modelOptions = filters.model && !models.includes(filters.model) ? [filters.model, ...models] : models;

  return (
    <section className="card filters-card" aria-label={t('filters')}>
      <div className="filters">
        <div className="filter-group">
          <span className="filter-label" aria-hidden="true">
            {t('time_range')}
          </span>
          <Segmented
            label={t('time_range')}
            value={filters.range}
            options={[
              ...PRESETS.map((p) => ({ value: p, label: t(`common:range_${p}`) })),
              { value: 'custom' as const, label: t('custom') },
            ]}
            onChange={(v) => {
              if (v === 'custom') {
                const w = windowOf(filters, now);
                update({ range: 'custom', from: Math.floor(w.from / 60_000) * 60_000, to: Math.ceil(w.to / 60_000) * 60_000 });
              } else {
                update({ range: v, from: undefined, to: undefined });
              }
            }}
          />
        </div>
        {filters.range === 'custom' && (
          <form
            className="custom-range"
            onSubmit={(e) => {
              e.preventDefault();
              if (!draftError) update({ range: 'custom', from: draft.from, to: draft.to });
            }}
          >
            <label>
              {t('from')}
              <input
                type="datetime-local"
                value={from}
                onChange={(e) => setFrom(e.target.value)}
                aria-invalid={shownError ? true : undefined}
                aria-describedby={shownError ? errorId : undefined}
              />
            </label>
            <label>
              {t('to')}
              <input
                type="datetime-local"
                value={to}
                onChange={(e) => setTo(e.target.value)}
                aria-invalid={shownError ? true : undefined}
                aria-describedby={shownError ? errorId : undefined}
              />
            </label>
            <button type="submit" disabled={draftError !== null}>
              {t('apply')}
            </button>
            {shownError && (
              <small className="field-error" id={errorId} role="alert">
                {t(shownError)}
              </small>
            )}
          </form>
        )}
      </div>
      <div className="filters">
        <label>
          {t('common:team')}
          <select
            value={filters.team_id ?? ''}
            onChange={(e) => {
              const team_id = positiveInt(e.target.value);
              const key = keys.find((k) => k.id === filters.key_id);
              update({ team_id, key_id: team_id && key && key.team_id !== team_id ? undefined : filters.key_id });
            }}
          >
            <TeamOptions teams={teams} all />
          </select>
        </label>
        <label>
          {t('key')}
          <select value={filters.key_id ?? ''} onChange={(e) => update({ key_id: positiveInt(e.target.value) })}>
            <NamedOptions
              items={keyOptions}
              selected={filters.key_id}
              all={t('all_keys')}
              label={(k) => `${k.name} (${k.prefix})`}
            />
          </select>
        </label>
        <label>
          {t('route')}
          <select value={filters.route_id ?? ''} onChange={(e) => update({ route_id: positiveInt(e.target.value) })}>
            <NamedOptions
              items={routes}
              selected={filters.route_id}
              all={t('all_routes')}
              label={(r) => `${r.name} (${r.prefix})`}
            />
          </select>
        </label>
        <label>
          {t('model')}
          <select value={filters.model ?? ''} onChange={(e) => update({ model: e.target.value || undefined })}>
            <option value="">{t('all_models')}</option>
            {modelOptions.map((m) => (
              <option key={m} value={m}>
                {m}
              </option>
            ))}
          </select>
        </label>
        <label>
          {t('status')}
          <select
            value={filters.status_class ?? ''}
            onChange={(e) => update({ status_class: (positiveInt(e.target.value) as StatusClass | undefined) ?? undefined })}
          >
            <option value="">{t('all_statuses')}</option>
            {[2, 3, 4, 5].map((c) => (
              <option key={c} value={c}>
                {t('status_class', { class: c })}
              </option>
            ))}
          </select>
        </label>
        <div className="filter-group">
          <span className="filter-label" aria-hidden="true">
            {t('rank_by')}
          </span>
          <Segmented
            label={t('rank_by')}
            value={filters.order}
            options={[
              { value: 'calls' as const, label: t('by_calls') },
              { value: 'tokens' as const, label: t('by_tokens') },
            ]}
            onChange={(order) => update({ order })}
          />
        </div>
        {any ? (
          <button type="button" className="ghost" onClick={onClear}>
            {t('clear_filters')}
          </button>
        ) : null}
      </div>
    </section>
  );
}
