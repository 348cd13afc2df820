import { afterEach, describe, expect, it, vi } from 'vitest';
import { applyTheme, effectiveTheme, savedTheme } from './theme';

function systemPrefersDark(dark: boolean) {
  vi.stubGlobal('matchMedia', (query: string) => ({ matches: dark && query.includes('dark'), media: query }));
}

describe('themes', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
    localStorage.clear();
  });

  it('follows the system unless a theme was picked', () => {
    systemPrefersDark(true);
    expect(effectiveTheme('system')).toBe('dark');
    systemPrefersDark(false);
    expect(effectiveTheme('system')).toBe('light');
    expect(effectiveTheme('dark')).toBe('dark');
  });

  it('remembers the choice and applies it to the document', () => {
    systemPrefersDark(false);
    expect(savedTheme()).toBe('system');
    applyTheme('dark');
    expect(savedTheme()).toBe('dark');
    expect(document.documentElement.dataset.theme).toBe('dark');
    applyTheme('system');
    expect(document.documentElement.dataset.theme).toBe('light');
  });
});
