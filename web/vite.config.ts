/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The console talks to the tollgate console listener; in `npm run dev` requests are proxied to it.
const target = process.env.TOLLGATE_CONSOLE ?? 'http://127.0.0.1:8317';

export default defineConfig({
  plugins: [react()],
  base: '/',
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    sourcemap: false,
    chunkSizeWarningLimit: 400,
  },
  server: {
    proxy: {
      // '/api/' and not '/api': the console's own /api-docs page is not the server's.
      '/api/': target,
      '/health': target,
      '/metrics': target,
    },
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.{ts,tsx}'],
    setupFiles: ['src/test-setup.ts'],
  },
});
