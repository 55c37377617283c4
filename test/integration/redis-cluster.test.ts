import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import request from 'supertest';
import { setTimeout as delay } from 'node:timers/promises';
import { CookieJar, loginThroughGateway } from '../support/browser-flow.ts';
import { startRedisCluster, type RedisCluster } from '../support/redis-cluster.ts';
import { startStack, type Stack } from '../support/stack.ts';

/** Short idle timeout: the in-process session cache lives a quarter of it (2 s), so a dead master shows quickly. */
const IDLE = '8s';

let cluster: RedisCluster;
let stack: Stack;

beforeAll(async () => {
  cluster = await startRedisCluster();
  stack = await startStack({
    store: 'memory',
    backchannel: true,
    idp: { accessTokenTtl: 2, rotateRefreshToken: true },
    env: { BFF_REDIS_CLUSTER_NODES: cluster.nodeUrls.join(','), BFF_REFRESH_SKEW: '0', BFF_SESSION_IDLE_TIMEOUT: IDLE },
  });
}, 60_000);
afterAll(async () => {
  await stack?.close();
  await cluster?.stop();
});

const storeIdOf = (cookie: string): string => /^bff=s%3A([A-Za-z0-9_-]{22})\./.exec(cookie)?.[1] as string;
const api = (cookie: string) => request(stack.gw.url).get('/api/echo/x').set('Cookie', cookie).set('x-csrf', '1');

describe('Redis Cluster (3 masters)', () => {
  test('login, API, refresh and back-channel logout work on the cluster', async () => {
    const { cookieHeader } = await loginThroughGateway(stack.gw.url, new CookieJar());
    expect((await api(cookieHeader)).status).toBe(200);
    const refreshes = stack.idp.counts.refreshToken;
    await delay(2200);
    const refreshed = await Promise.all(Array.from({ length: 20 }, () => api(cookieHeader)));
    expect(refreshed.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(stack.idp.counts.refreshToken - refreshes).toBe(1);
    const user = await request(stack.gw.url).get('/auth/user').set('Cookie', cookieHeader);
    expect(user.status).toBe(200);
    await stack.idp.sendBackchannelLogout('alice', user.body.claims.sid as string);
    expect((await request(stack.gw.url).get('/auth/user').set('Cookie', cookieHeader)).status).toBe(401);
    expect((await api(cookieHeader)).status).toBe(401);
  });

  test('sessions spread over the masters, and losing one master fails only its sessions, with 503', async () => {
    const cookies: string[] = [];
    for (let i = 0; i < 9; i++) cookies.push((await loginThroughGateway(stack.gw.url, new CookieJar())).cookieHeader);
    const homes = await Promise.all(cookies.map((c) => cluster.masterPortFor(`bff:sess:{${storeIdOf(c)}}`)));
    expect(new Set(homes).size).toBeGreaterThan(1);
    for (const cookie of cookies) expect((await api(cookie)).status).toBe(200);

    const victim = cluster.masters.find((m) => m.port === homes[0]);
    await victim?.stop();
    // Past the session cache's lifetime, every request reads the store again.
    await delay(2500);
    const results = await Promise.all(cookies.map((c) => api(c)));
    results.forEach((res, i) => {
      if (homes[i] === homes[0]) {
        expect(res.status).toBe(503);
        expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(JSON.parse(res.text).code).toBe('session_store_unavailable');
      } else {
        expect(res.status).toBe(200);
      }
    });
    // The gateway process is still up and serving.
    expect((await request(stack.gw.gateway.adminUrl).get('/healthz')).status).toBe(200);
  });
});
