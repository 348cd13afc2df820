// Reading the console's own URL search params: anything malformed is as if absent.

/** A positive integer id, or undefined. */
export function positiveInt(text: string | null | undefined): number | undefined {
  if (!text || !/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}
