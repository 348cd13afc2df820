// The theme and language switches (top bar, account page, invitation page).
import { useEffect, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { LANGUAGES, setLanguage, type Lang } from '../i18n';
import { applyTheme, savedTheme, type ThemeChoice } from '../theme';

/** Light / dark / follow the system; stays in step with the other theme switches. */
export function ThemeSelect({ id, 'aria-label': ariaLabel }: { id?: string; 'aria-label'?: string }) {
  const { t } = useTranslation('common');
  const [theme, setTheme] = useState<ThemeChoice>(savedTheme());
  useEffect(() => {
    const follow = () => setTheme(savedTheme());
    window.addEventListener('tollgate:theme', follow);
    return () => window.removeEventListener('tollgate:theme', follow);
  }, []);
  return (
    <select
      id={id}
      aria-label={ariaLabel}
      value={theme}
      onChange={(e) => {
        const v = e.target.value as ThemeChoice;
        setTheme(v);
        applyTheme(v);
      }}
    >
      <option value="system">{t('theme_system')}</option>
      <option value="light">{t('theme_light')}</option>
      <option value="dark">{t('theme_dark')}</option>
    </select>
  );
}

/** The console's language, each named in itself. */
export function LanguageSelect({ id, 'aria-label': ariaLabel }: { id?: string; 'aria-label'?: string }) {
  const { i18n } = useTranslation('common');
  return (
    <select id={id} aria-label={ariaLabel} value={i18n.language} onChange={(e) => setLanguage(e.target.value as Lang)}>
      {LANGUAGES.map((l) => (
        <option key={l.code} value={l.code} lang={l.code}>
          {l.label}
        </option>
      ))}
    </select>
  );
}
