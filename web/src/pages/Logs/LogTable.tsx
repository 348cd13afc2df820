// The windowed table: only the rows in view (and a few either side) are in the DOM, so scrolling
// through many thousands of loaded rows stays smooth; arrow keys move between rows.
import { useCallback, useEffect, useRef, useState, type KeyboardEvent } from 'react';
import { useTranslation } from 'react-i18next';
import i18n from '../../i18n';
import { StatusBadge } from '../../components/ui';
import { compact, dateTime, integer, millis, usd } from '../../format';
import type { LogEntry } from './filters';
import { ns } from './messages';
import { Cost } from '../../components/Cost';

/** How strongly a row is marked: 5xx or an error message red, 4xx amber, others not at all. */
export function rowTone(entry: Pick<LogEntry, 'status' | 'error'>): 'danger' | 'warning' | null {
  if (entry.status >= 500) return 'danger';
  if (entry.status >= 400) return 'warning';
  if (entry.error) return 'danger';
  return null;
}

// ---------------------------------------------------------------------------------------------
// The windowed table

/** Fixed row height (px) that the windowing relies on; the CSS keeps rows on one line. */
export const ROW_HEIGHT = 40;
const OVERSCAN = 12;

/** Which rows to render for a scroll position: [start, end). */
export function visibleSlice(scrollTop: number, viewHeight: number, count: number): [number, number] {
  const height = viewHeight > 0 ? viewHeight : 800;
  const start = Math.max(0, Math.floor(scrollTop / ROW_HEIGHT) - OVERSCAN);
  const end = Math.min(count, Math.ceil((scrollTop + height) / ROW_HEIGHT) + OVERSCAN);
  return [start, end];
}

export function LogTable({
  rows,
  keyNames,
  routeNames,
  teamNames,
  onOpen,
  onScrolled,
  canAutoLoad = false,
  onNearEnd,
  resetKey,
}: {
  rows: LogEntry[];
  keyNames: Map<number, string>;
  routeNames: Map<number, string>;
  teamNames: Map<number, string>;
  onOpen: (id: number) => void;
  onScrolled?: (scrolled: boolean) => void;
  canAutoLoad?: boolean;
  onNearEnd?: () => void;
  /** When this changes (new filters), the table scrolls back to the top. */
  resetKey?: string;
}) {
  const { t } = useTranslation(ns);
  const box = useRef<HTMLDivElement>(null);
  const [view, setView] = useState({ top: 0, height: 0 });
  const [active, setActive] = useState(0);
  const frame = useRef(0);

  const measure = useCallback(() => {
    cancelAnimationFrame(frame.current);
    frame.current = requestAnimationFrame(() => {
      const el = box.current;
      if (el) setView({ top: el.scrollTop, height: el.clientHeight });
    });
  }, []);
  useEffect(() => {
    measure();
    window.addEventListener('resize', measure);
    return () => {
      window.removeEventListener('resize', measure);
      cancelAnimationFrame(frame.current);
    };
  }, [measure]);
  useEffect(() => onScrolled?.(view.top > ROW_HEIGHT * 3), [view.top, onScrolled]);
  useEffect(() => {
    if (box.current) box.current.scrollTop = 0;
    setView((v) => ({ ...v, top: 0 }));
    setActive(0);
  }, [resetKey]);

  const [start, end] = visibleSlice(view.top, view.height, rows.length);
  useEffect(() => {
    if (canAutoLoad && end >= rows.length - OVERSCAN) onNearEnd?.();
  }, [canAutoLoad, end, rows.length, onNearEnd]);

  const tabStop = active >= start && active < end ? active : start;
  const moveTo = (index: number) => {
    const i = Math.max(0, Math.min(rows.length - 1, index));
    setActive(i);
    const el = box.current;
    if (!el) return;
    // Bring the row into view first (it may not be rendered yet), then focus it.
    const top = i * ROW_HEIGHT;
    const head = ROW_HEIGHT;
    if (top < el.scrollTop) el.scrollTop = top;
    else if (top + ROW_HEIGHT + head > el.scrollTop + el.clientHeight) el.scrollTop = top + ROW_HEIGHT + head - el.clientHeight;
    requestAnimationFrame(() => el.querySelector<HTMLElement>(`tr[data-index="${i}"]`)?.focus());
  };
  const onKey = (e: KeyboardEvent<HTMLTableRowElement>, index: number, id: number) => {
    const page = Math.max(1, Math.floor((box.current?.clientHeight ?? 400) / ROW_HEIGHT) - 1);
    const moves: Record<string, number> = {
      ArrowDown: index + 1,
      ArrowUp: index - 1,
      PageDown: index + page,
      PageUp: index - page,
      Home: 0,
      End: rows.length - 1,
    };
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      onOpen(id);
    } else if (e.key in moves) {
      e.preventDefault();
      moveTo(moves[e.key]);
    }
  };

  return (
    <div className="table-wrap logs-scroll" ref={box} onScroll={measure}>
      <table className="logs-table" aria-describedby="logs-row-hint" aria-rowcount={rows.length + 1}>
        <caption className="sr-only" id="logs-row-hint">
          {t('row_hint')}
        </caption>
        <thead>
          <tr aria-rowindex={1}>
            <th scope="col">{t('col_time')}</th>
            <th scope="col">{t('col_key')}</th>
            <th scope="col" className="hide-narrow">
              {t('col_route')}
            </th>
            <th scope="col">{t('col_request')}</th>
            <th scope="col">{t('col_model')}</th>
            <th scope="col">{t('col_status')}</th>
            <th scope="col" className="num">
              {t('col_latency')}
            </th>
            <th scope="col" className="num">
              {t('col_tokens')}
            </th>
            <th scope="col" className="num hide-narrow">
              {t('col_cost')}
            </th>
          </tr>
        </thead>
        <tbody>
          {start > 0 && (
            <tr className="logs-spacer" aria-hidden="true" style={{ height: start * ROW_HEIGHT }}>
              <td colSpan={9} />
            </tr>
          )}
          {rows.slice(start, end).map((e, offset) => {
            const index = start + offset;
            const tone = rowTone(e);
            const keyName =
              e.key_id === null || e.key_id === undefined
                ? null
                : (keyNames.get(e.key_id) ?? t('deleted_key', { id: e.key_id }));
            const routeName = e.route ?? (e.route_id ? routeNames.get(e.route_id) : undefined);
            const team = e.team_id ? teamNames.get(e.team_id) : undefined;
            return (
              <tr
                key={e.id}
                data-index={index}
                aria-rowindex={index + 2}
                className={`clickable logs-row${tone ? ` row-${tone}` : ''}`}
                tabIndex={index === tabStop ? 0 : -1}
                onClick={() => {
                  setActive(index);
                  onOpen(e.id);
                }}
                onFocus={() => setActive(index)}
                onKeyDown={(ev) => onKey(ev, index, e.id)}
              >
                <td title={dateTime(e.ts)}>
                  <time dateTime={new Date(e.ts).toISOString()}>{shortTime(e.ts)}</time>
                </td>
                <td className="logs-key" title={team ? `${keyName ?? ''} · ${team}` : undefined}>
                  {keyName ?? <span className="muted">{t('no_key')}</span>}
                </td>
                <td className="hide-narrow logs-route">{routeName ?? <span className="muted">—</span>}</td>
                <td className="logs-request" title={`${e.method} ${e.path}${e.error ? `\n${e.error}` : ''}`}>
                  <span className="logs-method">{e.method}</span> <span className="mono">{e.path}</span>
                </td>
                <td className="logs-model">{e.model ?? <span className="muted">—</span>}</td>
                <td>
                  <StatusBadge status={e.status} />
                  {e.error && (
                    <span className="logs-error-mark" title={e.error}>
                      <span aria-hidden="true"> ⚠</span>
                      <span className="sr-only">{e.error}</span>
                    </span>
                  )}
                </td>
                <td className="num">{millis(e.latency_ms)}</td>
                <td className="num" title={integer(e.total_tokens)}>
                  {e.total_tokens ? compact(e.total_tokens) : <span className="muted">—</span>}
                  {e.estimated && e.total_tokens > 0 && (
                    <span className="muted" title={t('estimated')}>
                      *<span className="sr-only">{t('estimated')}</span>
                    </span>
                  )}
                </td>
                <td className="num hide-narrow">{e.cost_usd === null || e.cost_usd === undefined ? <Cost usd={null} /> : e.cost_usd ? usd(e.cost_usd) : <span className="muted">—</span>}</td>
              </tr>
            );
          })}
          {end < rows.length && (
            <tr className="logs-spacer" aria-hidden="true" style={{ height: (rows.length - end) * ROW_HEIGHT }}>
              <td colSpan={9} />
            </tr>
          )}
        </tbody>
      </table>
    </div>
  );
}

/** Time of day for today's calls, date and time for older ones (formatters reused while scrolling). */
const timeFormats = new Map<string, Intl.DateTimeFormat>();
function shortTime(ms: number): string {
  const d = new Date(ms);
  const sameDay = d.toDateString() === new Date().toDateString();
  const lang = i18n.language || 'en';
  const cacheKey = `${lang}|${sameDay}`;
  let format = timeFormats.get(cacheKey);
  if (!format) {
    format = new Intl.DateTimeFormat(
      lang,
      sameDay
        ? { hour: '2-digit', minute: '2-digit', second: '2-digit' }
        : { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' },
    );
    timeFormats.set(cacheKey, format);
  }
  return format.format(d);
}
