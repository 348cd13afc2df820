import { describe, expect, it } from 'vitest';
import { LANGUAGES, pickLanguage, registered } from '.';

// Load every page so that each registers its messages.
// (not the pages' own tests: importing them here would run them inside this file)
import.meta.glob(['../pages/*.tsx', '!../pages/*.test.tsx'], { eager: true });
import.meta.glob('./*.ts', { eager: true });

describe('languages', () => {
  it('follows the browser', () => {
    expect(pickLanguage(['zh-CN', 'en'])).toBe('zh-CN');
    expect(pickLanguage(['zh'])).toBe('zh-CN');
    expect(pickLanguage(['zh-TW'])).toBe('zh-TW');
    expect(pickLanguage(['zh-HK'])).toBe('zh-TW');
    expect(pickLanguage(['zh-Hant-TW'])).toBe('zh-TW');
    expect(pickLanguage(['fr-FR', 'en-GB'])).toBe('en');
    expect(pickLanguage(['de'])).toBe('en');
  });

  it('has every message in every language, none left empty or untranslated', () => {
    expect(registered.size).toBeGreaterThan(1);
    for (const [ns, bundles] of registered) {
      const keys = Object.keys(bundles.en).sort();
      for (const { code } of LANGUAGES) {
        const messages = bundles[code];
        expect(Object.keys(messages).sort(), `${ns} in ${code}`).toEqual(keys);
        for (const key of keys) {
          expect(messages[key]?.trim(), `${ns}:${key} in ${code}`).toBeTruthy();
        }
      }
      // Chinese text should be Chinese: at least half of the messages differ from English.
      for (const code of ['zh-CN', 'zh-TW'] as const) {
        const same = keys.filter((k) => bundles[code][k] === bundles.en[k]).length;
        expect(same, `${ns}: ${code} copies English for ${same} of ${keys.length}`).toBeLessThanOrEqual(keys.length / 2);
      }
    }
  });
});
