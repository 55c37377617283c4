/**
 * The browser suite (`npm run test:e2e`): Chromium, a gateway child process, the demo IdP
 * and a redis-server of its own, so no global setup. Slow by nature: it waits out an
 * access token's lifetime.
 * @type {import('jest').Config}
 */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true }] },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testMatch: ['<rootDir>/test/e2e/**/*.test.ts'],
  testTimeout: 120000,
  maxWorkers: 1,
  reporters: ['default', '<rootDir>/test/support/summary-reporter.js'],
};
