import { afterAll, beforeAll, expect, test } from '@jest/globals';
import request from 'supertest';
import { setTimeout as delay } from 'node:timers/promises';
import { CookieJar, loginThroughGateway } from '../support/browser-flow.ts';
import { redisCli, startRedisSentinel, type RedisSentinelSetup } from '../support/redis-cluster.ts';
import { startStack, type Stack } from '../support/stack.ts';

let sentinel: RedisSentinelSetup;
let stack: Stack;

beforeAll(async () => {
  sentinel = await startRedisSentinel();
  stack = await startStack({
    store: 'memory',
    env: { BFF_REDIS_SENTINELS: sentinel.sentinels, BFF_REDIS_SENTINEL_NAME: sentinel.name, BFF_SESSION_IDLE_TIMEOUT: '8s' },
  });
  // The Sentinel client finds the master asynchronously; until then session commands answer 503 (by design).
  const deadline = Date.now() + 15_000;
  while ((await request(stack.gw.gateway.adminUrl).get('/readyz')).status !== 200) {
    if (Date.now() > deadline) throw new Error('the gateway did not become ready on the Sentinel setup');
    await delay(100);
  }
}, 60_000);
afterAll(async () => {
  await stack?.close();
  await sentinel?.stop();
});

const api = (cookie: string) => request(stack.gw.url).get('/api/echo/x').set('Cookie', cookie).set('x-csrf', '1');

test('logged-in sessions keep working within 10 s of a Sentinel failover', async () => {
  const cookies: string[] = [];
  for (let i = 0; i < 3; i++) cookies.push((await loginThroughGateway(stack.gw.url, new CookieJar())).cookieHeader);
  for (const cookie of cookies) expect((await api(cookie)).status).toBe(200);
  // The replica must hold the sessions before it can take over.
  await redisCli(sentinel.master.port, 'wait', '1', '2000');
  const before = await sentinel.masterPort();
  expect(before).toBe(sentinel.master.port);

  expect((await redisCli(sentinel.sentinel.port, 'sentinel', 'failover', sentinel.name)).trim()).toBe('OK');
  const started = Date.now();
  let workingAfterMs: number | undefined;
  while (Date.now() - started < 10_000) {
    // Only count answers given after the 2 s session cache has expired: they come from the new master.
    if (Date.now() - started > 2_500 && (await sentinel.masterPort()) === sentinel.replica.port) {
      const statuses = await Promise.all(cookies.map((c) => api(c).then((r) => r.status)));
      // Writes must work too: a fresh login stores its session on the new master.
      const fresh = statuses.every((s) => s === 200) ? await loginThroughGateway(stack.gw.url, new CookieJar()).catch(() => undefined) : undefined;
      if (fresh && (await api(fresh.cookieHeader)).status === 200) {
        workingAfterMs = Date.now() - started;
        break;
      }
    }
    await delay(200);
  }
  expect(workingAfterMs).toBeDefined();
  expect(workingAfterMs as number).toBeLessThan(10_000);
  expect((await redisCli(sentinel.replica.port, 'role')).split('\n')[0]).toBe('master');
}, 60_000);
