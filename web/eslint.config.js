// Lints for the console: the TypeScript rules that need no type information, and React's rules
// of hooks with the compiler-derived checks of eslint-plugin-react-hooks 7.
import js from '@eslint/js';
import globals from 'globals';
import reactHooks from 'eslint-plugin-react-hooks';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist', 'node_modules', 'test-results', 'src/api/schema.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  reactHooks.configs.flat.recommended,
  {
    rules: {
      'react-hooks/exhaustive-deps': 'error',
      // Three checks written for code that the React Compiler memoises, which this app does not
      // use. They flag patterns the console relies on on purpose: dialogs that stay mounted and
      // clear their form in an effect when opened again (set-state-in-effect), `Date.now()` read
      // while rendering relative times (purity), and the Analytics page's "latest URL" ref that is
      // read during render so that quick successive filter changes build on each other (refs).
      'react-hooks/set-state-in-effect': 'off',
      'react-hooks/purity': 'off',
      'react-hooks/refs': 'off',
      // `_name` marks a parameter a callback's signature requires but the body does not read.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['src/**/*.{ts,tsx}', 'vite.config.ts'],
    languageOptions: { globals: globals.browser },
  },
  {
    // Node scripts; the end-to-end tests also hand functions to the browser (`page.evaluate`).
    files: ['e2e/**/*.mjs', 'scripts/**/*.mjs', 'eslint.config.js'],
    languageOptions: { globals: { ...globals.node, ...globals.browser } },
  },
);
