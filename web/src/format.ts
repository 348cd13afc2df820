// Numbers, times and durations for people, in the console's language and the browser's time zone.
import i18n from './i18n';

function locale(): string {
  return i18n.language || 'en';
}

/** 1234567 → "1.2M" (en), "123.5万" (zh-CN), "123.5萬" (zh-TW). */
export function compact(n: number | null | undefined, lang = locale()): string {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  return new Intl.NumberFormat(lang, { notation: 'compact', maximumFractionDigits: 1 }).format(n);
}

/** 1234567 → "1,234,567". */
export function integer(n: number | null | undefined, lang = locale()): string {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  return new Intl.NumberFormat(lang, { maximumFractionDigits: 0 }).format(n);
}

/** 0.9876 → "98.8%". */
export function percent(ratio: number | null | undefined, lang = locale(), digits = 1): string {
  if (ratio === null || ratio === undefined || Number.isNaN(ratio)) return '—';
  return new Intl.NumberFormat(lang, { style: 'percent', maximumFractionDigits: digits }).format(ratio);
}

/** Milliseconds of latency: "850 ms", "1.2 s". */
export function millis(ms: number | null | undefined, lang = locale()): string {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  if (ms < 1000) return `${new Intl.NumberFormat(lang, { maximumFractionDigits: ms < 10 ? 1 : 0 }).format(ms)} ms`;
  return `${new Intl.NumberFormat(lang, { maximumFractionDigits: 2 }).format(ms / 1000)} s`;
}

/** A length of time in seconds, in its largest whole unit: "30 seconds", "5 minutes", "1 hour". */
export function span(seconds: number, lang = locale()): string {
  const [unit, size] =
    seconds >= 3600 && seconds % 3600 === 0
      ? (['hour', 3600] as const)
      : seconds >= 60 && seconds % 60 === 0
        ? (['minute', 60] as const)
        : (['second', 1] as const);
  return new Intl.NumberFormat(lang, { style: 'unit', unit, unitDisplay: 'long' }).format(seconds / size);
}

/** A cost in US dollars. */
export function usd(amount: number | null | undefined, lang = locale()): string {
  if (amount === null || amount === undefined || Number.isNaN(amount)) return '—';
  return new Intl.NumberFormat(lang, {
    style: 'currency',
    currency: 'USD',
    maximumFractionDigits: amount !== 0 && Math.abs(amount) < 1 ? 4 : 2,
  }).format(amount);
}

/** Epoch ms → date and time in the browser's time zone. */
export function dateTime(ms: number | null | undefined, lang = locale()): string {
  if (ms === null || ms === undefined) return '—';
  return new Intl.DateTimeFormat(lang, { dateStyle: 'medium', timeStyle: 'medium' }).format(new Date(ms));
}

/** Epoch ms → date only. */
export function date(ms: number | null | undefined, lang = locale()): string {
  if (ms === null || ms === undefined) return '—';
  return new Intl.DateTimeFormat(lang, { dateStyle: 'medium' }).format(new Date(ms));
}

/** Epoch ms → "3 minutes ago" / "in 2 days". */
export function relative(ms: number | null | undefined, now = Date.now(), lang = locale()): string {
  if (ms === null || ms === undefined) return '—';
  const seconds = Math.round((ms - now) / 1000);
  const units: [Intl.RelativeTimeFormatUnit, number][] = [
    ['year', 31536000],
    ['month', 2592000],
    ['day', 86400],
    ['hour', 3600],
    ['minute', 60],
    ['second', 1],
  ];
  const rtf = new Intl.RelativeTimeFormat(lang, { numeric: 'auto' });
  for (const [unit, size] of units) {
    if (Math.abs(seconds) >= size || unit === 'second') return rtf.format(Math.round(seconds / size), unit);
  }
  return rtf.format(0, 'second');
}
