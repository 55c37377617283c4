import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createClient } from '@redis/client';
import request from 'supertest';
import { loginThroughGateway } from '../support/browser-flow.ts';
import { scrape } from '../support/metrics.ts';
import { startRedis, type RedisServer } from '../support/redis.ts';
import { startStack, type Stack } from '../support/stack.ts';

/** The bound: readiness reports a dead Redis within 2 s. */
const READY_FLIP_LIMIT_MS = 2000;
/** A request that needs the session must be answered (503) well before any client would give up. */
const ANSWER_LIMIT_MS = 3000;
const RECOVERY_LIMIT_MS = 15_000;

let redis: RedisServer;
let stack: Stack;
let admin: string;

beforeAll(async () => {
  // A Redis of this file's own, to kill and restart on the same port.
  redis = await startRedis();
  stack = await startStack({
    env: { BFF_REDIS_URL: redis.url },
    routes: [
      { prefix: '/api/echo', target: 'ECHO', token: 'user' },
      { prefix: '/api/public', target: 'ECHO', token: 'none' },
    ],
  });
  admin = stack.gw.gateway.adminUrl;
});
afterAll(async () => {
  await stack?.close();
  await redis?.stop();
});

/** Polls /readyz until it answers `status`, checking /healthz stays 200 all along; resolves with the time it took. */
async function readinessBecomes(status: number, limitMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const ready = await request(admin).get('/readyz').timeout(limitMs);
    expect((await request(admin).get('/healthz')).status).toBe(200);
    if (ready.status === status) return Date.now() - started;
    if (Date.now() - started > limitMs) throw new Error(`/readyz still ${ready.status} after ${limitMs} ms: ${ready.text}`);
    await delay(50);
  }
}

const api = (cookie: string) => request(stack.gw.url).get('/api/echo/x').set('Cookie', cookie).set('x-csrf', '1').timeout(ANSWER_LIMIT_MS);

function expectStoreUnavailable(res: request.Response): void {
  expect(res.status).toBe(503);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.headers['retry-after']).toBe('5');
  expect(JSON.parse(res.text)).toMatchObject({ status: 503, code: 'session_store_unavailable' });
}

describe('Redis killed', () => {
  test('/readyz 503 within 2 s, /healthz 200, API calls 503 problem+json; all recover when Redis is back, without a restart', async () => {
    const { cookieHeader } = await loginThroughGateway(stack.gw.url);
    expect((await api(cookieHeader)).status).toBe(200);
    expect((await request(admin).get('/readyz')).body).toMatchObject({ status: 'ready', checks: { store: true, idp: true } });

    await redis.stop();
    const flipped = await readinessBecomes(503, READY_FLIP_LIMIT_MS);
    expect(flipped).toBeLessThanOrEqual(READY_FLIP_LIMIT_MS);
    expect((await request(admin).get('/readyz')).body).toMatchObject({ status: 'not ready', checks: { store: false, idp: true } });

    // Twenty at once: every one answered, none hanging, the process still serving.
    const outage = await Promise.all(Array.from({ length: 20 }, () => api(cookieHeader)));
    for (const res of outage) expectStoreUnavailable(res);
    expect((await request(stack.gw.url).get('/api/public/x').set('x-csrf', '1')).status).toBe(200);
    const during = await scrape(admin);
    expect(during.series('bff_redis_command_errors_total').reduce((sum, s) => sum + s.value, 0)).toBeGreaterThanOrEqual(20);

    redis = await startRedis({ port: redis.port });
    await readinessBecomes(200, RECOVERY_LIMIT_MS);
    // The old session died with the Redis process (it keeps nothing on disk): 401, not 503.
    const old = await api(cookieHeader);
    expect(old.status).toBe(401);
    const again = await loginThroughGateway(stack.gw.url);
    expect((await api(again.cookieHeader)).status).toBe(200);
  }, 40_000);
});

describe('Redis frozen (answers nothing, connection open)', () => {
  test('/readyz 503 within 2 s, API calls 503 after the 1 s command timeout; on thaw the same session works again', async () => {
    const { cookieHeader } = await loginThroughGateway(stack.gw.url);
    const pid = await redisPid(redis.url);
    process.kill(pid, 'SIGSTOP');
    try {
      const flipped = await readinessBecomes(503, READY_FLIP_LIMIT_MS);
      expect(flipped).toBeLessThanOrEqual(READY_FLIP_LIMIT_MS);
      const started = Date.now();
      expectStoreUnavailable(await api(cookieHeader));
      // express-session's path as well as the proxy's.
      const user = await request(stack.gw.url).get('/auth/user').set('Cookie', cookieHeader).timeout(ANSWER_LIMIT_MS);
      expect(user.status).toBe(503);
      expect(JSON.parse(user.text).code).toBe('session_store_unavailable');
      expect(Date.now() - started).toBeLessThan(2 * ANSWER_LIMIT_MS);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await readinessBecomes(200, RECOVERY_LIMIT_MS);
    // Nothing was lost this time: the very same cookie works.
    expect((await api(cookieHeader)).status).toBe(200);
  }, 40_000);
});

async function redisPid(url: string): Promise<number> {
  const client = createClient({ url });
  await client.connect();
  try {
    const info = await client.info('server');
    const pid = Number(/process_id:(\d+)/.exec(info)?.[1]);
    if (!Number.isInteger(pid) || pid <= 0) throw new Error('no process_id in INFO server');
    return pid;
  } finally {
    await client.close();
  }
}
