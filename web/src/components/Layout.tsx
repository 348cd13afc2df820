// The signed-in shell: navigation (only what the role may use), theme and language switches.
import { useEffect, useState } from 'react';
import { NavLink, Outlet, useLocation } from 'react-router';
import { useTranslation } from 'react-i18next';
import { useAuth, usePermissions } from '../auth';
import { LanguageSelect, ThemeSelect } from './preferences';

interface NavItem {
  to: string;
  key: string;
  show: boolean;
}

export default function Layout() {
  const { t } = useTranslation('common');
  const { session, signOut } = useAuth();
  const can = usePermissions();
  const [open, setOpen] = useState(false);
  const location = useLocation();
  useEffect(() => setOpen(false), [location.pathname]);

  const sections: { title: string; items: NavItem[] }[] = [
    {
      title: t('section_usage'),
      items: [
        { to: '/', key: 'nav_overview', show: true },
        { to: '/analytics', key: 'nav_analytics', show: true },
        { to: '/logs', key: 'nav_logs', show: true },
        { to: '/counters', key: 'nav_counters', show: true },
      ],
    },
    {
      title: t('section_manage'),
      items: [
        { to: '/keys', key: 'nav_keys', show: true },
        { to: '/routes', key: 'nav_routes', show: true },
        { to: '/models', key: 'nav_models', show: true },
        { to: '/teams', key: 'nav_teams', show: true },
        { to: '/limits', key: 'nav_limits', show: true },
        { to: '/alerts', key: 'nav_alerts', show: can.managesAny },
        { to: '/users', key: 'nav_users', show: can.isAdmin },
        { to: '/audit', key: 'nav_audit', show: can.managesAny },
      ],
    },
    {
      title: t('section_system'),
      items: [
        { to: '/system', key: 'nav_health', show: true },
        { to: '/settings', key: 'nav_settings', show: can.isAdmin },
        { to: '/tokens', key: 'nav_tokens', show: true },
        { to: '/account', key: 'nav_account', show: true },
        { to: '/api-docs', key: 'nav_api_docs', show: true },
      ],
    },
  ];

  return (
    <div className="shell">
      <a href="#content" className="skip-link">
        {t('skip_to_content')}
      </a>
      <aside className={`sidebar ${open ? 'open' : ''}`} id="sidebar">
        <NavLink to="/" className="brand">
          <img src="/favicon.svg" alt="" width={24} height={24} /> tollgate
        </NavLink>
        <nav className="nav" aria-label="Main">
          {sections.map((s) => (
            <div key={s.title}>
              <div className="nav-section">{s.title}</div>
              {s.items
                .filter((i) => i.show)
                .map((i) => (
                  <NavLink key={i.to} to={i.to} end={i.to === '/'}>
                    {t(i.key)}
                  </NavLink>
                ))}
            </div>
          ))}
        </nav>
      </aside>
      <div className="main">
        <header className="topbar">
          <button
            type="button"
            className="menu-button ghost"
            aria-controls="sidebar"
            aria-expanded={open}
            onClick={() => setOpen((o) => !o)}
          >
            ☰ <span className="sr-only">{t('menu')}</span>
          </button>
          <span className="spacer" />
          <label className="row">
            <span className="sr-only">{t('theme')}</span>
            <ThemeSelect aria-label={t('theme')} />
          </label>
          <label className="row">
            <span className="sr-only">{t('language')}</span>
            <LanguageSelect aria-label={t('language')} />
          </label>
          <span className="muted hide-narrow" title={t('signed_in_as', { email: session?.user.email })}>
            {session?.user.display_name || session?.user.email}
          </span>
          <button type="button" onClick={() => void signOut()}>
            {t('sign_out')}
          </button>
        </header>
        <main className="content" id="content" tabIndex={-1}>
          <Outlet />
        </main>
      </div>
    </div>
  );
}
