// The filters: time range, search, status, team, key, route and model; typing updates the URL
// after a short pause.
import { useEffect, useId, useState, type ReactNode } from 'react';
import { useTranslation } from 'react-i18next';
import type { Schemas } from '../../api/client';
import { TeamOptions, NamedOptions } from '../../components/ui';
import { fromLocalInput, toLocalInput } from '../../localTime';
import { positiveInt } from '../../params';
import { badRange, type LogFilters, RANGE_MS, type RangePreset, RANGES } from './filters';
import { ns } from './messages';

const COMMON_CODES = ['200', '201', '204', '400', '401', '403', '404', '413', '422', '429', '499', '500', '502', '503', '504'];

// ---------------------------------------------------------------------------------------------
// Filters

export function LogFiltersBar({
  filters,
  update,
  teams,
  keys,
  routes,
  models,
  onReset,
}: {
  filters: LogFilters;
  update: (change: Partial<LogFilters>) => void;
  teams: Schemas['TeamView'][];
  keys: Schemas['KeyView'][];
  routes: Schemas['RouteView'][];
  models: string[];
  onReset?: () => void;
}) {
  const { t } = useTranslation([ns, 'common']);
  const [text, setText] = useState(filters.q);
  const [model, setModel] = useState(filters.model ?? '');
  // Follow the URL when it changes from elsewhere (back button, "reset").
  useEffect(() => setText(filters.q), [filters.q]);
  useEffect(() => setModel(filters.model ?? ''), [filters.model]);
  // Type-ahead search: the URL follows the box after a short pause.
  useEffect(() => {
    if (text.trim() === filters.q) return;
    const timer = setTimeout(() => update({ q: text }), 350);
    return () => clearTimeout(timer);
  }, [text, filters.q, update]);

  const visibleKeys = filters.team_id ? keys.filter((k) => k.team_id === filters.team_id) : keys;
  const visibleRoutes = filters.team_id
    ? routes.filter((r) => r.team_id === null || r.team_id === undefined || r.team_id === filters.team_id)
    : routes;
  const statusKnown = !filters.status || /xx$/.test(filters.status) || COMMON_CODES.includes(filters.status);

  return (
    <form
      className="filters logs-filters"
      role="search"
      onSubmit={(e) => {
        e.preventDefault();
        update({ q: text, model: model.trim() || undefined });
      }}
    >
      <FilterField label={t('search')} className="logs-search">
        {(id) => (
          <input
            id={id}
            type="search"
            value={text}
            maxLength={200}
            placeholder={t('search_placeholder')}
            onChange={(e) => setText(e.target.value)}
          />
        )}
      </FilterField>
      <FilterField label={t('range')}>
        {(id) => (
          <select
            id={id}
            value={filters.range}
            onChange={(e) => {
              const range = e.target.value as RangePreset;
              if (range === 'custom') {
                const now = Date.now();
                update({ range, from: filters.from ?? now - RANGE_MS['24h'], to: filters.to ?? now });
              } else update({ range, from: undefined, to: undefined });
            }}
          >
            {RANGES.map((r) => (
              <option key={r} value={r}>
                {t(`range_${r}`)}
              </option>
            ))}
          </select>
        )}
      </FilterField>
      {filters.range === 'custom' && (
        <>
          <FilterField label={t('from')}>
            {(id) => (
              <input
                id={id}
                type="datetime-local"
                value={toLocalInput(filters.from)}
                aria-invalid={badRange(filters) || undefined}
                onChange={(e) => update({ from: fromLocalInput(e.target.value) })}
              />
            )}
          </FilterField>
          <FilterField label={t('to')}>
            {(id) => (
              <input
                id={id}
                type="datetime-local"
                value={toLocalInput(filters.to)}
                aria-invalid={badRange(filters) || undefined}
                onChange={(e) => update({ to: fromLocalInput(e.target.value) })}
              />
            )}
          </FilterField>
        </>
      )}
      <FilterField label={t('team')}>
        {(id) => (
          <select
            id={id}
            value={filters.team_id ?? ''}
            onChange={(e) => update({ team_id: positiveInt(e.target.value), key_id: undefined })}
          >
            <TeamOptions teams={teams} all />
          </select>
        )}
      </FilterField>
      <FilterField label={t('key')}>
        {(id) => (
          <select id={id} value={filters.key_id ?? ''} onChange={(e) => update({ key_id: positiveInt(e.target.value) })}>
            <NamedOptions
              items={visibleKeys}
              selected={filters.key_id}
              all={t('all_keys')}
              missing={(id) => t('deleted_key', { id })}
            />
          </select>
        )}
      </FilterField>
      <FilterField label={t('route')}>
        {(id) => (
          <select id={id} value={filters.route_id ?? ''} onChange={(e) => update({ route_id: positiveInt(e.target.value) })}>
            <NamedOptions items={visibleRoutes} selected={filters.route_id} all={t('all_routes')} />
          </select>
        )}
      </FilterField>
      <FilterField label={t('model')}>
        {(id) => (
          <>
            <input
              id={id}
              list="logs-models"
              value={model}
              maxLength={200}
              placeholder={t('all_models')}
              onChange={(e) => {
                setModel(e.target.value);
                // Picking a suggestion applies it at once; typed text applies on Enter or leaving the box.
                if (models.includes(e.target.value)) update({ model: e.target.value });
              }}
              onBlur={() => model.trim() !== (filters.model ?? '') && update({ model: model.trim() || undefined })}
            />
            <datalist id="logs-models">
              {models.map((m) => (
                <option key={m} value={m} />
              ))}
            </datalist>
          </>
        )}
      </FilterField>
      <FilterField label={t('status')}>
        {(id) => (
          <select id={id} value={filters.status ?? ''} onChange={(e) => update({ status: e.target.value || undefined })}>
            <option value="">{t('any_status')}</option>
            <optgroup label={t('status_classes')}>
              {(['2xx', '3xx', '4xx', '5xx'] as const).map((c) => (
                <option key={c} value={c}>
                  {t(`class_${c}`)}
                </option>
              ))}
            </optgroup>
            <optgroup label={t('status_codes')}>
              {COMMON_CODES.map((c) => (
                <option key={c} value={c}>
                  {c}
                </option>
              ))}
              {!statusKnown && <option value={filters.status}>{filters.status}</option>}
            </optgroup>
          </select>
        )}
      </FilterField>
      {onReset && (
        <button type="button" className="ghost" onClick={onReset}>
          {t('reset')}
        </button>
      )}
      <button type="submit" className="sr-only" tabIndex={-1}>
        {t('search')}
      </button>
    </form>
  );
}

/** A filter control with a separate label (so that a select's options do not become its name). */
export function FilterField({
  label,
  className,
  children,
}: {
  label: string;
  className?: string;
  children: (id: string) => ReactNode;
}) {
  const id = useId();
  return (
    <div className={`filter-field${className ? ` ${className}` : ''}`}>
      <label htmlFor={id}>{label}</label>
      {children(id)}
    </div>
  );
}
