import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.ts';
import type { GatewayConfig } from '../../src/config/types.ts';

/**
 * Loads a configuration around `routes` exactly as the gateway does at start-up (from a
 * routes file), with placeholder values for everything else; throws its ConfigError. A
 * suite can call it before `startStack` so that routes the gateway refuses fail the suite
 * before any IdP or upstream is started (and left running).
 */
export function loadConfigWithRoutes(routes: readonly unknown[]): GatewayConfig {
  const dir = mkdtempSync(join(tmpdir(), 'bff-routes-'));
  try {
    const routesFile = join(dir, 'routes.json');
    // `ECHO` (startStack's placeholder for the echo upstream) is not a URL: any http URL will do here.
    const withTargets = routes.map((route) =>
      typeof route === 'object' && route !== null && (route as Record<string, unknown>).target === 'ECHO' ? { ...route, target: 'http://echo.invalid:8080' } : route,
    );
    writeFileSync(routesFile, JSON.stringify({ routes: withTargets }));
    return loadConfig(
      {
        BFF_PUBLIC_URL: 'https://app.example.com',
        BFF_ISSUER_URL: 'https://idp.example.com/realms/main',
        BFF_CLIENT_ID: 'spa-gateway',
        BFF_CLIENT_SECRET: 'client-secret-Zq8vLw2Xk9',
        BFF_SESSION_SECRETS: 'session-secret-A-0123456789abcdefghijklmnop',
        BFF_ROUTES_FILE: routesFile,
      },
      dir,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
