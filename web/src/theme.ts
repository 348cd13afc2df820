// Light and dark themes from CSS variables: follow the system unless the user picked one.
export type ThemeChoice = 'system' | 'light' | 'dark';
const STORAGE_KEY = 'tollgate.theme';

export function savedTheme(): ThemeChoice {
  try {
    const v = localStorage.getItem(STORAGE_KEY);
    if (v === 'light' || v === 'dark' || v === 'system') return v;
  } catch {
    // storage unavailable
  }
  return 'system';
}

export function effectiveTheme(choice: ThemeChoice): 'light' | 'dark' {
  if (choice !== 'system') return choice;
  return typeof window !== 'undefined' && window.matchMedia?.('(prefers-color-scheme: dark)').matches
    ? 'dark'
    : 'light';
}

export function applyTheme(choice: ThemeChoice) {
  try {
    localStorage.setItem(STORAGE_KEY, choice);
  } catch {
    // not remembered
  }
  document.documentElement.dataset.theme = effectiveTheme(choice);
  window.dispatchEvent(new CustomEvent('tollgate:theme'));
}

/** Reads a CSS variable of the current theme (charts use it for their colours). */
export function cssVar(name: string): string {
  if (typeof document === 'undefined') return '';
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}
