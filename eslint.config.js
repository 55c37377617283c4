// `npm run lint`. Flat config: ESLint's and typescript-eslint's recommended rules, plus the
// type-aware promise rules (a forgotten await on a store write is the bug a gateway made of
// async calls is most likely to ship). Type information costs ~15 s of the run on two cores.
// The rest of recommendedTypeChecked was measured and left off: its ~180 findings were
// supertest's `any` bodies, async methods that implement promise interfaces without awaiting,
// and rejections with the error a callback API handed over — harmless, churn to "fix".
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  {
    // examples/ has its own package and toolchain; the rest is built, installed or generated.
    ignores: ['examples/', 'dist/', 'node_modules/', '.cache/', 'coverage/', 'test-results/', 'bench/.build/'],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      // A handler that reads a variable assigned later (a server created before its app) stays `let`.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
        },
      ],
    },
  },
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      // Express 5 and oidc-provider await the handlers they are given, so a promise where a
      // void callback is typed is normal here; conditionals and spreads are still checked.
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
    },
  },
  {
    // Plain JavaScript run by Node: the CLI wrapper, the demo's launcher, jest glue.
    files: ['**/*.js'],
    ignores: ['demo/spa/**'],
    languageOptions: { globals: globals.node },
  },
  {
    // The demo's single-page app runs in the browser as a classic script.
    files: ['demo/spa/**/*.js'],
    languageOptions: { sourceType: 'script', globals: globals.browser },
  },
  {
    // Named exports only: one name per thing, the same at every import site.
    files: ['src/**', 'test/**'],
    ignores: [
      // jest loads these through their default export.
      'test/support/global-setup.ts',
      'test/support/global-teardown.ts',
      'test/support/summary-reporter.js',
    ],
    rules: {
      'no-restricted-syntax': [
        'error',
        { selector: 'ExportDefaultDeclaration', message: 'Use a named export.' },
        { selector: 'ExportSpecifier[exported.name="default"]', message: 'Use a named export.' },
      ],
    },
  },
  {
    // The gateway logs through pino; a terminal write is process.stdout/stderr, on purpose.
    files: ['src/**'],
    rules: { 'no-console': 'error' },
  },
);
