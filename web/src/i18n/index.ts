// Languages: English, 简体中文, 繁體中文 — chosen from the browser, switchable, remembered.
// Each page declares its own messages with `defineMessages`, so translations live beside the code
// that uses them and a missing translation is a type error.
import i18n from 'i18next';
import { initReactI18next } from 'react-i18next';

export const LANGUAGES = [
  { code: 'en', label: 'English' },
  { code: 'zh-CN', label: '简体中文' },
  { code: 'zh-TW', label: '繁體中文' },
] as const;
export type Lang = (typeof LANGUAGES)[number]['code'];

const STORAGE_KEY = 'tollgate.lang';

/** Maps a browser language tag to one of ours: zh-TW/HK/MO and zh-Hant → 繁體, other zh → 简体. */
export function pickLanguage(tags: readonly string[]): Lang {
  for (const raw of tags) {
    const tag = raw.toLowerCase();
    if (tag.startsWith('zh')) {
      return /hant|-tw|-hk|-mo/.test(tag) ? 'zh-TW' : 'zh-CN';
    }
    if (tag.startsWith('en')) return 'en';
  }
  return 'en';
}

function initialLanguage(): Lang {
  try {
    const saved = localStorage.getItem(STORAGE_KEY);
    if (saved && LANGUAGES.some((l) => l.code === saved)) return saved as Lang;
  } catch {
    // storage may be unavailable (private mode); fall through to the browser's choice
  }
  if (typeof navigator === 'undefined') return 'en';
  return pickLanguage(navigator.languages?.length ? navigator.languages : [navigator.language]);
}

export function setLanguage(lang: Lang) {
  try {
    localStorage.setItem(STORAGE_KEY, lang);
  } catch {
    // not remembered, still switched
  }
  void i18n.changeLanguage(lang);
}

function applyDocumentLang(lang: string) {
  if (typeof document !== 'undefined') document.documentElement.lang = lang;
}

void i18n.use(initReactI18next).init({
  lng: initialLanguage(),
  fallbackLng: 'en',
  supportedLngs: LANGUAGES.map((l) => l.code),
  resources: {},
  interpolation: { escapeValue: false },
  returnNull: false,
  initImmediate: false,
} as Parameters<typeof i18n.init>[0]);
applyDocumentLang(i18n.language);
i18n.on('languageChanged', applyDocumentLang);

export type Messages = Record<string, string>;

/** Every namespace registered so far, for the completeness test. */
export const registered = new Map<string, Record<Lang, Messages>>();

/**
 * Registers a namespace's messages in every language; `zh-CN` and `zh-TW` must have exactly the
 * English keys. Use the namespace with `useTranslation(ns)`.
 */
export function defineMessages<const T extends Messages>(
  ns: string,
  en: T,
  others: { 'zh-CN': { [K in keyof T]: string }; 'zh-TW': { [K in keyof T]: string } },
): string {
  const bundles = { en, 'zh-CN': others['zh-CN'], 'zh-TW': others['zh-TW'] } as Record<Lang, Messages>;
  registered.set(ns, bundles);
  for (const [lang, messages] of Object.entries(bundles)) {
    i18n.addResourceBundle(lang, ns, messages, true, true);
  }
  return ns;
}

export default i18n;
