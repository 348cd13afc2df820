import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import './i18n';
import './i18n/common';
import './styles.css';
import { applyTheme, savedTheme } from './theme';
import { AuthProvider } from './auth';
import { ToastProvider } from './components/ui';
import { ApiError } from './api/client';
import App from './App';

applyTheme(savedTheme());
window.matchMedia?.('(prefers-color-scheme: dark)').addEventListener?.('change', () => {
  if (savedTheme() === 'system') applyTheme('system');
});

const queries = new QueryClient({
  defaultOptions: {
    queries: {
      staleTime: 15_000,
      refetchOnWindowFocus: false,
      // A client error will not get better by asking again.
      retry: (count, error) => !(error instanceof ApiError && error.status >= 400 && error.status < 500) && count < 2,
    },
  },
});

const root = document.getElementById('root');
if (root) {
  createRoot(root).render(
    <StrictMode>
      <QueryClientProvider client={queries}>
        <AuthProvider>
          <ToastProvider>
            <App />
          </ToastProvider>
        </AuthProvider>
      </QueryClientProvider>
    </StrictMode>,
  );
}
