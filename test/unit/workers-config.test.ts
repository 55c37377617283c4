import { afterAll, describe, expect, test } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/load.ts';
import type { Env } from '../../src/config/env-file.ts';
import { MAX_WORKERS, readWorkers } from '../../src/config/workers.ts';

const dir = mkdtempSync(join(tmpdir(), 'bff-workers-config-'));
mkdirSync(join(dir, 'config'));
writeFileSync(join(dir, 'config', 'routes.json'), JSON.stringify({ routes: [{ prefix: '/api/x', target: 'http://x:1', token: 'user' }] }));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const BASE: Env = {
  BFF_PUBLIC_URL: 'https://app.example.com',
  BFF_ISSUER_URL: 'https://idp.example.com',
  BFF_CLIENT_ID: 'spa',
  BFF_CLIENT_SECRET: 'client-secret-Zq8vLw2Xk9',
  BFF_SESSION_SECRETS: 'session-secret-A-0123456789abcdefghijklmnop',
};
const REDIS: Env = { BFF_REDIS_URL: 'redis://redis:6379' };

function problemsOf(env: Env): readonly string[] {
  try {
    loadConfig(env, dir);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('BFF_WORKERS', () => {
  test('unset is one process, with or without Redis', () => {
    expect(loadConfig(BASE, dir).workers).toBe(1);
    expect(loadConfig({ ...BASE, ...REDIS }, dir).workers).toBe(1);
  });

  test('1 is allowed without Redis (that is the single process of old)', () => {
    expect(loadConfig({ ...BASE, BFF_WORKERS: '1' }, dir).workers).toBe(1);
  });

  test.each(['2', '8', String(MAX_WORKERS)])('%s workers with Redis', (value) => {
    expect(loadConfig({ ...BASE, ...REDIS, BFF_WORKERS: value }, dir).workers).toBe(Number(value));
  });

  test('auto is one per core, capped', () => {
    const get = (value: string) => (name: string) => (name === 'BFF_WORKERS' ? value : undefined);
    const problems: string[] = [];
    expect(readWorkers(get('auto'), problems, true, 6)).toBe(6);
    expect(readWorkers(get('AUTO'), problems, true, 1)).toBe(1);
    expect(readWorkers(get('auto'), problems, true, 512)).toBe(MAX_WORKERS);
    expect(problems).toEqual([]);
    expect(loadConfig({ ...BASE, ...REDIS, BFF_WORKERS: 'auto' }, dir).workers).toBeGreaterThanOrEqual(1);
  });

  test.each(['0', '-1', '1.5', 'many', '65', '1e1', '0x2', ' 2 2'])('%j is refused by name, saying what is allowed', (value) => {
    expect(problemsOf({ ...BASE, ...REDIS, BFF_WORKERS: value })).toEqual([`BFF_WORKERS: must be a whole number from 1 to ${MAX_WORKERS}, or auto (one worker process per CPU core)`]);
  });

  test.each(['2', 'auto'])('%s without Redis is refused: sessions must be shared between workers', (value) => {
    const problems = problemsOf({ ...BASE, BFF_WORKERS: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^BFF_WORKERS: more than one worker needs Redis .*sessions must be shared between workers/);
    expect(problems[0]).toContain('BFF_REDIS_URL');
  });

  test('a Redis Cluster or Sentinel is a shared store too', () => {
    expect(loadConfig({ ...BASE, BFF_REDIS_CLUSTER_NODES: 'redis://a:6379,redis://b:6379', BFF_WORKERS: '2' }, dir).workers).toBe(2);
    expect(loadConfig({ ...BASE, BFF_REDIS_SENTINELS: 's:26379', BFF_REDIS_SENTINEL_NAME: 'm', BFF_WORKERS: '2' }, dir).workers).toBe(2);
  });
});
