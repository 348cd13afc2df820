// The export menu: a dataset and a format, downloaded with the current filters.
import { useEffect, useId, useRef, useState, type ReactNode } from 'react';
import { EXPORT_FORMATS, type ExportFormat } from '../../api/vocabulary';
import { Segmented } from '../../components/ui';
import { type AnalyticsFilters, type ExportDataset, exportHref } from './filters';
import type { T } from './types';

const DATASETS: ExportDataset[] = ['events', 'series', 'top_key', 'top_route', 'top_model', 'top_team'];

export function ExportMenu({ filters, disabled, t }: { filters: AnalyticsFilters; disabled: boolean; t: T }): ReactNode {
  const [open, setOpen] = useState(false);
  const [dataset, setDataset] = useState<ExportDataset>('events');
  const [format, setFormat] = useState<ExportFormat>('csv');
  // The window is taken when the menu opens, so a preset ends "now" at that moment.
  const [openedAt, setOpenedAt] = useState(() => Date.now());
  const root = useRef<HTMLDivElement>(null);
  const button = useRef<HTMLButtonElement>(null);
  const panelId = useId();
  useEffect(() => {
    if (!open) return;
    const outside = (e: MouseEvent) => {
      if (root.current && !root.current.contains(e.target as Node)) setOpen(false);
    };
    document.addEventListener('mousedown', outside);
    return () => document.removeEventListener('mousedown', outside);
  }, [open]);
  const href = exportHref(filters, dataset, format, openedAt);
  const file = `tollgate-${dataset === 'events' ? 'events' : dataset === 'series' ? 'series' : 'top'}.${format}`;
  return (
    <div
      className="menu export-menu"
      ref={root}
      onKeyDown={(e) => {
        if (e.key === 'Escape' && open) {
          e.stopPropagation();
          setOpen(false);
          button.current?.focus();
        }
      }}
    >
      <button
        type="button"
        ref={button}
        aria-expanded={open}
        aria-controls={panelId}
        disabled={disabled}
        onClick={() => {
          if (!open) setOpenedAt(Date.now());
          setOpen(!open);
        }}
      >
        {t('export')} <span aria-hidden="true">▾</span>
      </button>
      {open && (
        <div className="menu-panel card" id={panelId} role="group" aria-label={t('export')}>
          <p className="muted small-text menu-desc">{t('export_desc')}</p>
          <label className="field">
            <span>{t('dataset')}</span>
            <select value={dataset} onChange={(e) => setDataset(e.target.value as ExportDataset)}>
              {DATASETS.map((d) => (
                <option key={d} value={d}>
                  {t(`dataset_${d}`)}
                </option>
              ))}
            </select>
          </label>
          <div className="field">
            <span aria-hidden="true">{t('format')}</span>
            <Segmented
              label={t('format')}
              value={format}
              options={EXPORT_FORMATS.map((f) => ({ value: f, label: f.toUpperCase() }))}
              onChange={setFormat}
            />
          </div>
          {dataset === 'events' && <p className="muted small-text">{t('events_hint')}</p>}
          {dataset !== 'events' && filters.status_class && <p className="alert warning">{t('status_filter_hint')}</p>}
          <a className="button primary" href={href} download={file} onClick={() => setTimeout(() => setOpen(false), 0)}>
            {t('download')}
          </a>
        </div>
      )}
    </div>
  );
}
