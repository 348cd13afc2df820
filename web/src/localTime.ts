// Times in the browser's time zone as form controls hold them: `<input type="date">` and
// `<input type="datetime-local">` values to and from epoch milliseconds.

const pad = (n: number) => String(n).padStart(2, '0');

/** `YYYY-MM-DD` of an epoch ms time in the browser's time zone (for `<input type="date">`). */
export function localDay(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** `<input type="datetime-local">` value (`2026-05-01T09:30`) of an epoch ms time, in the browser's time zone; '' for none. */
export function toLocalInput(ms: number | undefined): string {
  if (ms === undefined) return '';
  const d = new Date(ms);
  return `${localDay(ms)}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/**
 * Epoch ms of a `datetime-local` value (`2026-05-01T09:30`, seconds optional) or a bare day
 * (`2026-05-01`, its midnight) in the browser's time zone; undefined when blank or invalid.
 */
export function fromLocalInput(value: string): number | undefined {
  if (!value) return undefined;
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?)?$/.exec(value.trim());
  if (!m) return undefined;
  const [, y, mo, d, h = '0', mi = '0', s = '0'] = m;
  const ms = new Date(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)).getTime();
  return Number.isNaN(ms) ? undefined : ms;
}
