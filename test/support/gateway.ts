import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config/load.ts';
import type { GatewayConfig } from '../../src/config/types.ts';
import { startGateway, type Gateway } from '../../src/gateway.ts';
import { createLogger } from '../../src/ops/logger.ts';
import { TEST_CLIENT_ID, TEST_CLIENT_SECRET } from './idp.ts';
import { getFreePort } from './ports.ts';

export const TEST_SESSION_SECRET = 'test-session-secret-0123456789-abcdefghijklmnop';

export type TestGateway = {
  gateway: Gateway;
  config: GatewayConfig;
  /** The gateway's public URL without a trailing slash, e.g. http://127.0.0.1:41234 */
  url: string;
  /** Every log line the gateway wrote, at trace level. */
  logs: string[];
  close(): Promise<void>;
};

/** Reserves the port a gateway will listen on, so its redirect URI can be registered at the IdP first. */
export async function reserveGatewayUrl(): Promise<string> {
  return `http://127.0.0.1:${await getFreePort()}`;
}

export type TestGatewayOptions = {
  url: string;
  issuer: string;
  routes?: unknown[];
  /** Extra or overriding BFF_* variables. */
  env?: Record<string, string>;
  /** Use the test redis-server (default) or the memory store. */
  store?: 'redis' | 'memory';
  /** Listen address of the main port (and of the admin port unless BFF_ADMIN_HOST is set); default 127.0.0.1. */
  host?: string;
};

/** Starts a real gateway from environment variables, as an operator would configure it. */
export async function startTestGateway(options: TestGatewayOptions): Promise<TestGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'bff-test-'));
  const routesFile = join(dir, 'routes.json');
  writeFileSync(routesFile, JSON.stringify({ routes: options.routes ?? [] }));
  const port = new URL(options.url).port;
  const env: Record<string, string> = {
    BFF_PUBLIC_URL: options.url,
    BFF_PORT: port,
    BFF_ADMIN_PORT: '0',
    BFF_ISSUER_URL: options.issuer,
    BFF_ALLOW_INSECURE_ISSUER: 'true',
    BFF_CLIENT_ID: TEST_CLIENT_ID,
    BFF_CLIENT_SECRET: TEST_CLIENT_SECRET,
    BFF_SESSION_SECRETS: TEST_SESSION_SECRET,
    BFF_ROUTES_FILE: routesFile,
    BFF_LOG_LEVEL: 'trace',
    // Every suite logs in from 127.0.0.1 against the one test Redis, and the per-address counters are
    // shared: the default limits would trip across suites. Suites that test the limits set their own.
    BFF_RATE_LIMIT_LOGIN: '100000/1m',
    BFF_RATE_LIMIT_CALLBACK: '100000/1m',
    ...((options.store ?? 'redis') === 'redis' ? { BFF_REDIS_URL: requireRedisUrl() } : {}),
    ...options.env,
  };
  const config = loadConfig(env, dir);
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs.push(chunk.toString('utf8'));
      done();
    },
  });
  const gateway = await startGateway(config, { host: options.host ?? '127.0.0.1', logger: createLogger('trace', sink) });
  return { gateway, config, url: options.url, logs, close: () => gateway.close(1000) };
}

function requireRedisUrl(): string {
  const url = process.env.BFF_TEST_REDIS_URL;
  if (!url) throw new Error('BFF_TEST_REDIS_URL is not set: the jest global setup starts redis-server and sets it');
  return url;
}
