import { afterAll, beforeAll, expect, test } from '@jest/globals';
import request from 'supertest';
import { setTimeout as delay } from 'node:timers/promises';
import { loginThroughGateway } from '../support/browser-flow.ts';
import { rawRedis, startStack, type Stack } from '../support/stack.ts';

const IDLE_SEC = 2;
const ABSOLUTE_SEC = 5;

let stack: Stack;
let redis: Awaited<ReturnType<typeof rawRedis>>;

beforeAll(async () => {
  stack = await startStack({ env: { BFF_SESSION_IDLE_TIMEOUT: `${IDLE_SEC}s`, BFF_SESSION_ABSOLUTE_TIMEOUT: `${ABSOLUTE_SEC}s` } });
  redis = await rawRedis();
});
afterAll(async () => {
  await redis?.close();
  await stack?.close();
});

function storeKeyOf(cookie: string): string {
  return `bff:sess:{${/^bff=s%3A([A-Za-z0-9_-]{22})\./.exec(cookie)?.[1]}}`;
}

test('an idle session ends after the idle timeout, and its record is gone from Redis', async () => {
  const { cookieHeader } = await loginThroughGateway(stack.gw.url);
  const user = await request(stack.gw.url).get('/auth/user').set('Cookie', cookieHeader);
  expect(user.body.session.idleExpiresIn).toBe(IDLE_SEC);
  expect(user.body.session.expiresIn).toBeLessThanOrEqual(ABSOLUTE_SEC);
  expect(await redis.exists(storeKeyOf(cookieHeader))).toBe(1);
  await delay(IDLE_SEC * 1000 + 500);
  // Gone by TTL, not merely ignored.
  expect(await redis.exists(storeKeyOf(cookieHeader))).toBe(0);
  expect((await request(stack.gw.url).get('/auth/user').set('Cookie', cookieHeader)).status).toBe(401);
  expect((await request(stack.gw.url).get('/api/echo/x').set('Cookie', cookieHeader).set('x-csrf', '1')).status).toBe(401);
});

test('activity slides the idle timeout, but the absolute timeout ends even an active session', async () => {
  const { cookieHeader } = await loginThroughGateway(stack.gw.url);
  const started = Date.now();
  const pause = (IDLE_SEC * 1000) / 2;
  // Active every half idle period through the proxy (whose touch is throttled), past several idle periods.
  while (Date.now() - started + pause < ABSOLUTE_SEC * 1000 - 700) {
    const res = await request(stack.gw.url).get('/api/echo/x').set('Cookie', cookieHeader).set('x-csrf', '1');
    expect(res.status).toBe(200);
    await delay(pause);
  }
  expect(Date.now() - started).toBeGreaterThan(IDLE_SEC * 1000 * 1.5);
  const user = await request(stack.gw.url).get('/auth/user').set('Cookie', cookieHeader);
  expect(user.status).toBe(200);
  expect(user.body.session.expiresIn).toBeLessThanOrEqual(2);
  expect(user.body.session.idleExpiresIn).toBeLessThanOrEqual(user.body.session.expiresIn);
  await delay(ABSOLUTE_SEC * 1000 - (Date.now() - started) + 500);
  expect((await request(stack.gw.url).get('/api/echo/x').set('Cookie', cookieHeader).set('x-csrf', '1')).status).toBe(401);
  expect(await redis.exists(storeKeyOf(cookieHeader))).toBe(0);
});
