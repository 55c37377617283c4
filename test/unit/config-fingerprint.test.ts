import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { configFingerprint } from '../../src/config/fingerprint.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { GatewayConfig } from '../../src/config/types.ts';

const dir = mkdtempSync(join(tmpdir(), 'bff-fingerprint-'));
const routesFile = join(dir, 'routes.json');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The configuration as a process loads it from this environment and routes file. */
function load(routes: readonly object[], secrets = 'session-secret-A-0123456789abcdefghijklmnop'): GatewayConfig {
  writeFileSync(routesFile, JSON.stringify({ routes }));
  return loadConfig(
    {
      BFF_PUBLIC_URL: 'https://app.example.com',
      BFF_ISSUER_URL: 'https://idp.example.com/realms/main',
      BFF_CLIENT_ID: 'spa-gateway',
      BFF_CLIENT_SECRET: 'client-secret-Zq8vLw2Xk9',
      BFF_SESSION_SECRETS: secrets,
      BFF_ROUTES_FILE: routesFile,
    },
    dir,
  );
}

const ROUTE = { prefix: '/api/orders', target: 'http://orders.internal:8080', token: 'user' };

describe('configFingerprint', () => {
  test('the same inputs loaded twice give the same fingerprint; another secret or routes file another one', () => {
    const once = configFingerprint(load([ROUTE]));
    expect(configFingerprint(load([ROUTE]))).toBe(once);
    expect(configFingerprint(load([ROUTE], 'session-secret-B-qrstuvwxyz9876543210ABCDEF'))).not.toBe(once);
    expect(configFingerprint(load([ROUTE, { ...ROUTE, prefix: '/api/new' }]))).not.toBe(once);
  });

  test('sets compare by content, in any order', () => {
    expect(configFingerprint(load([{ ...ROUTE, passHeaders: ['X-A', 'X-B'] }]))).toBe(configFingerprint(load([{ ...ROUTE, passHeaders: ['X-B', 'X-A'] }])));
    expect(configFingerprint(load([{ ...ROUTE, passHeaders: ['X-A'] }]))).not.toBe(configFingerprint(load([{ ...ROUTE, passHeaders: ['X-A', 'X-B'] }])));
  });

  test('is a digest: no secret in readable form', () => {
    const config = load([ROUTE]);
    const fingerprint = configFingerprint(config);
    expect(fingerprint).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(fingerprint).not.toContain(config.sessionSecrets[0]);
  });
});
