// Routes of the console. Pages load on demand so the first load stays small.
import { lazy, Suspense, type ReactNode } from 'react';
import { BrowserRouter, Link, Navigate, Route, Routes, useLocation } from 'react-router';
import { useTranslation } from 'react-i18next';
import { useAuth, usePermissions } from './auth';
import Layout from './components/Layout';
import { Loading } from './components/ui';
import SignIn from './pages/SignIn';

const AcceptInvitation = lazy(() => import('./pages/AcceptInvitation'));
const Dashboard = lazy(() => import('./pages/Dashboard'));
const Analytics = lazy(() => import('./pages/Analytics'));
const Logs = lazy(() => import('./pages/Logs'));
const Keys = lazy(() => import('./pages/Keys'));
const RoutesPage = lazy(() => import('./pages/Routes'));
const Models = lazy(() => import('./pages/Models'));
const Teams = lazy(() => import('./pages/Teams'));
const Limits = lazy(() => import('./pages/Limits'));
const Alerts = lazy(() => import('./pages/Alerts'));
const Users = lazy(() => import('./pages/Users'));
const Audit = lazy(() => import('./pages/Audit'));
const Health = lazy(() => import('./pages/Health'));
const Counters = lazy(() => import('./pages/Counters'));
const Settings = lazy(() => import('./pages/Settings'));
const Tokens = lazy(() => import('./pages/Tokens'));
const Account = lazy(() => import('./pages/Account'));
const ApiDocs = lazy(() => import('./pages/ApiDocs'));

/** The app is served at `/` and at `/console`. */
export function basename(pathname: string): string {
  return pathname === '/console' || pathname.startsWith('/console/') ? '/console' : '/';
}

function RequireSession({ children }: { children: ReactNode }) {
  const { session } = useAuth();
  const location = useLocation();
  if (session === undefined) return <Loading />;
  if (session === null) {
    const next = location.pathname + location.search;
    return <Navigate to={`/sign-in?next=${encodeURIComponent(next)}`} replace />;
  }
  return <>{children}</>;
}

function AdminOnly({ children }: { children: ReactNode }) {
  const can = usePermissions();
  return can.isAdmin ? <>{children}</> : <NotFound />;
}

function NotFound() {
  const { t } = useTranslation('common');
  return (
    <div className="state">
      <p>{t('not_found')}</p>
      <Link to="/">{t('go_home')}</Link>
    </div>
  );
}

export default function App() {
  return (
    <BrowserRouter basename={basename(window.location.pathname)}>
      <Suspense fallback={<Loading />}>
        <Routes>
          <Route path="/sign-in" element={<SignIn />} />
          <Route path="/invite/:token" element={<AcceptInvitation />} />
          <Route
            element={
              <RequireSession>
                <Layout />
              </RequireSession>
            }
          >
            <Route index element={<Dashboard />} />
            <Route path="analytics" element={<Analytics />} />
            <Route path="logs" element={<Logs />} />
            <Route path="keys" element={<Keys />} />
            <Route path="routes" element={<RoutesPage />} />
            <Route path="models" element={<Models />} />
            <Route path="teams" element={<Teams />} />
            <Route path="teams/:id" element={<Teams />} />
            <Route path="limits" element={<Limits />} />
            <Route path="alerts" element={<Alerts />} />
            <Route
              path="users"
              element={
                <AdminOnly>
                  <Users />
                </AdminOnly>
              }
            />
            <Route path="audit" element={<Audit />} />
            <Route path="system" element={<Health />} />
            <Route path="counters" element={<Counters />} />
            <Route
              path="settings"
              element={
                <AdminOnly>
                  <Settings />
                </AdminOnly>
              }
            />
            <Route path="tokens" element={<Tokens />} />
            <Route path="account" element={<Account />} />
            <Route path="api-docs" element={<ApiDocs />} />
            <Route path="*" element={<NotFound />} />
          </Route>
        </Routes>
      </Suspense>
    </BrowserRouter>
  );
}
