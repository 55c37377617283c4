import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import request from 'supertest';
import { setTimeout as delay } from 'node:timers/promises';
import { loginThroughGateway } from '../support/browser-flow.ts';
import { startEcho, type EchoServer } from '../support/echo.ts';
import { reserveGatewayUrl, startTestGateway, TEST_SESSION_SECRET, type TestGateway } from '../support/gateway.ts';
import { startIdp, TEST_CLIENT_ID, TEST_CLIENT_SECRET, type TestIdp } from '../support/idp.ts';
import { recordKeyId, storedRecord } from '../support/redis-values.ts';
import { rawRedis } from '../support/stack.ts';

/** Access tokens live 2 s, refresh tokens rotate: the conditions that burn refresh tokens in naive BFFs. */
const ACCESS_TOKEN_TTL_SEC = 2;

let idp: TestIdp;
let echo: EchoServer;
let a: TestGateway;
let b: TestGateway;
let redis: Awaited<ReturnType<typeof rawRedis>>;
const tokenResponses: Array<Record<string, string>> = [];

beforeAll(async () => {
  const url = await reserveGatewayUrl();
  idp = await startIdp({ redirectUris: [`${url}/auth/callback`], postLogoutRedirectUris: [`${url}/`], accessTokenTtl: ACCESS_TOKEN_TTL_SEC, rotateRefreshToken: true });
  idp.provider.on('grant.success', (ctx) => tokenResponses.push({ ...(ctx.body as Record<string, string>) }));
  echo = await startEcho();
  const routes = [{ prefix: '/api/echo', target: echo.url, token: 'user' }];
  // Two instances behind one public URL, sharing one Redis, as two pods behind a load balancer.
  a = await startTestGateway({ url, issuer: idp.issuer, routes, env: { BFF_REFRESH_SKEW: '0' } });
  b = await startTestGateway({ url, issuer: idp.issuer, routes, env: { BFF_REFRESH_SKEW: '0', BFF_PORT: '0' } });
  redis = await rawRedis();
});
afterAll(async () => {
  await redis?.close();
  await a?.close();
  await b?.close();
  await echo?.close();
  await idp?.close();
});

const api = (gateway: TestGateway, cookie: string) => request(gateway.gateway.url).get('/api/echo/x').set('Cookie', cookie).set('x-csrf', '1');

function storeKeyOf(cookie: string): string {
  const storeId = /^bff=s%3A([A-Za-z0-9_-]{22})\./.exec(cookie)?.[1];
  if (!storeId) throw new Error(`not a session cookie: ${cookie}`);
  return `bff:sess:{${storeId}}`;
}

/** Waits until the session's access token has expired at the IdP's clock. */
const untilExpired = () => delay(ACCESS_TOKEN_TTL_SEC * 1000 + 200);

describe('two instances, one Redis', () => {
  test('log in through A, call the API through B; log out through B and A answers 401 with the old cookie', async () => {
    const { cookieHeader } = await loginThroughGateway(a.url);
    const viaB = await api(b, cookieHeader);
    expect(viaB.status).toBe(200);
    expect(viaB.body.headers.authorization).toMatch(/^Bearer /);
    // A has the session in its in-process cache now; B's logout must reach it at once.
    expect((await api(a, cookieHeader)).status).toBe(200);
    const logout = await request(b.gateway.url).post('/auth/logout').set('Cookie', cookieHeader).set('x-csrf', '1');
    expect(logout.status).toBe(200);
    expect((await api(a, cookieHeader)).status).toBe(401);
    expect((await request(a.gateway.url).get('/auth/user').set('Cookie', cookieHeader)).status).toBe(401);
  });
});

describe('refresh', () => {
  test('100 concurrent requests after expiry, over both instances, all succeed on exactly one refresh grant', async () => {
    const { cookieHeader } = await loginThroughGateway(a.url);
    const first = (await api(a, cookieHeader)).body.headers.authorization as string;
    await untilExpired();
    const before = idp.counts.refreshToken;
    const echoed = echo.requests.length;
    const responses = await Promise.all(Array.from({ length: 100 }, (_, i) => api(i % 2 === 0 ? a : b, cookieHeader)));
    expect(responses.map((r) => r.status)).toEqual(Array(100).fill(200));
    // Counted at the IdP's token endpoint, not in the gateway.
    expect(idp.counts.refreshToken - before).toBe(1);
    const tokens = new Set(echo.requests.slice(echoed).map((r) => r.headers.authorization));
    expect(tokens.size).toBe(1);
    expect(tokens.has(first)).toBe(false);
    expect((await idp.introspect((responses[0]?.body.headers.authorization as string).slice(7))).active).toBe(true);
  });

  test('the rotated refresh token replaces the old one: refreshing twice in a row works', async () => {
    const { cookieHeader } = await loginThroughGateway(a.url);
    const before = idp.counts.refreshToken;
    await untilExpired();
    expect((await api(a, cookieHeader)).status).toBe(200);
    await untilExpired();
    expect((await api(b, cookieHeader)).status).toBe(200);
    expect(idp.counts.refreshToken - before).toBe(2);
  });

  test('a revoked refresh token: the next API call gets 401 session_expired and the session is gone from Redis', async () => {
    const { cookieHeader } = await loginThroughGateway(a.url);
    const refreshToken = tokenResponses.at(-1)?.refresh_token as string;
    const revoked = await fetch(`${idp.issuer}/token/revocation`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${TEST_CLIENT_ID}:${TEST_CLIENT_SECRET}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: refreshToken, token_type_hint: 'refresh_token' }),
    });
    expect(revoked.status).toBe(200);
    expect(await redis.exists(storeKeyOf(cookieHeader))).toBe(1);
    await untilExpired();
    const res = await api(b, cookieHeader);
    expect(res.status).toBe(401);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(res.text).code).toBe('session_expired');
    expect(await redis.exists(storeKeyOf(cookieHeader))).toBe(0);
    expect((await request(a.gateway.url).get('/auth/user').set('Cookie', cookieHeader)).status).toBe(401);
  });

  test('the IdP down during a refresh: 503, the session intact; the IdP back: the next call after the back-off succeeds', async () => {
    const { cookieHeader } = await loginThroughGateway(a.url);
    await untilExpired();
    await idp.stop();
    try {
      const res = await api(a, cookieHeader);
      expect(res.status).toBe(503);
      expect(JSON.parse(res.text).code).toBe('idp_unavailable');
      expect(await redis.exists(storeKeyOf(cookieHeader))).toBe(1);
      expect((await request(b.gateway.url).get('/auth/user').set('Cookie', cookieHeader)).status).toBe(200);
    } finally {
      await idp.start();
    }
    // The failed refresh left a back-off marker: until it expires, no instance asks the IdP for this session again.
    const backoffKey = storeKeyOf(cookieHeader).replace('bff:sess:', 'bff:refresh-backoff:');
    expect(await redis.pTTL(backoffKey)).toBeGreaterThan(0);
    expect((await api(b, cookieHeader)).status).toBe(503);
    while ((await redis.exists(backoffKey)) === 1) await delay(50);
    const again = await api(b, cookieHeader);
    expect(again.status).toBe(200);
  });

  test('a session created under secret A works after rotation to "B,A" and is re-encrypted under B at its next write', async () => {
    const { cookieHeader } = await loginThroughGateway(a.url);
    const envelopeKey = async () => recordKeyId(await storedRecord(redis, cookieHeader));
    const underA = await envelopeKey();
    const rotated = await startTestGateway({
      url: a.url,
      issuer: idp.issuer,
      routes: [{ prefix: '/api/echo', target: echo.url, token: 'user' }],
      env: { BFF_REFRESH_SKEW: '0', BFF_PORT: '0', BFF_SESSION_SECRETS: `rotated-secret-B-0123456789abcdefghijklmnopqrstuv,${TEST_SESSION_SECRET}` },
    });
    try {
      expect((await api(rotated, cookieHeader)).status).toBe(200);
      expect(await envelopeKey()).toBe(underA);
      await untilExpired();
      expect((await api(rotated, cookieHeader)).status).toBe(200);
      const underB = await envelopeKey();
      expect(underB).not.toBe(underA);
      // Still readable by every instance that knows B, and not by one that knows only A.
      expect((await request(rotated.gateway.url).get('/auth/user').set('Cookie', cookieHeader)).status).toBe(200);
      expect((await request(a.gateway.url).get('/auth/user').set('Cookie', cookieHeader)).status).toBe(401);
    } finally {
      await rotated.close();
    }
  });
});
