import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import request from 'supertest';
import { setTimeout as delay } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { CookieJar, followRedirects, loginThroughGateway } from '../support/browser-flow.ts';
import { startDpopUpstream, type DpopCheck, type DpopUpstream } from '../support/dpop-upstream.ts';
import { startEcho, type EchoServer } from '../support/echo.ts';
import { reserveGatewayUrl, startTestGateway, TEST_SESSION_SECRET, type TestGateway } from '../support/gateway.ts';
import { startIdp, TOKEN_EXCHANGE_GRANT, type TestIdp } from '../support/idp.ts';
import { everythingInRedis, storedSession } from '../support/redis-values.ts';
import { rawRedis, startStack } from '../support/stack.ts';
import { nextMessage, upgradeOutcome } from '../support/websocket.ts';

/*
 * DPoP (RFC 9449) end to end, without stubs: the test IdP (oidc-provider 9,
 * DPoP on, demanding its own nonces), two gateway instances sharing the test
 * Redis under BFF_DPOP=true, and a resource server that verifies every proof
 * and the token's binding with jose (test/support/dpop-upstream.ts).
 */

const ORDERS = 'https://orders.test';
const BILLING = 'billing-api';

let idp: TestIdp;
let upstream: DpopUpstream;
let echo: EchoServer;
let a: TestGateway;
let b: TestGateway;
let redis: Awaited<ReturnType<typeof rawRedis>>;
const sockets: WebSocket[] = [];

beforeAll(async () => {
  const url = await reserveGatewayUrl();
  idp = await startIdp({
    redirectUris: [`${url}/auth/callback`],
    postLogoutRedirectUris: [`${url}/`],
    grantTypes: ['authorization_code', 'refresh_token', 'client_credentials', TOKEN_EXCHANGE_GRANT],
    rotateRefreshToken: true,
    accessTokenTtl: 3,
    routeTokenTtl: 300,
    dpop: { requireNonce: true },
  });
  upstream = await startDpopUpstream(idp);
  echo = await startEcho();
  const routes = [
    { prefix: '/api/dpop', target: upstream.url, token: 'user', websocket: true },
    { prefix: '/api/orders', target: upstream.url, token: 'user', resource: ORDERS },
    { prefix: '/api/billing', target: upstream.url, token: 'exchange', audience: BILLING },
    { prefix: '/api/client', target: upstream.url, token: 'client' },
    { prefix: '/api/echo', target: echo.url, token: 'user' },
    { prefix: '/api/open', target: echo.url, token: 'none' },
  ];
  const env = { BFF_DPOP: 'true', BFF_REFRESH_SKEW: '0', BFF_PROXY_BUFFER_BYTES: '1024' };
  a = await startTestGateway({ url, issuer: idp.issuer, routes, env });
  b = await startTestGateway({ url, issuer: idp.issuer, routes, env: { ...env, BFF_PORT: '0' } });
  redis = await rawRedis();
});
afterAll(async () => {
  for (const socket of sockets) socket.terminate();
  await redis?.close();
  await a?.close();
  await b?.close();
  await upstream?.close();
  await echo?.close();
  await idp?.close();
});

const api = (gateway: TestGateway, cookie: string, path: string) => request(gateway.gateway.url).get(path).set('Cookie', cookie).set('x-csrf', '1');
const lastCheck = (): DpopCheck => upstream.checks.at(-1) as DpopCheck;

describe('DPoP-bound user tokens', () => {
  test('the login binds the tokens to the session key (IdP nonces honoured): cnf.jkt equals the proof key thumbprint, proofs fresh and unique', async () => {
    const { cookieHeader } = await loginThroughGateway(a.url);
    const before = upstream.checks.length;
    for (const gateway of [a, b, a]) expect((await api(gateway, cookieHeader, '/api/dpop/items?page=2')).status).toBe(200);
    const checks = upstream.checks.slice(before);
    expect(checks.map((c) => c.error ?? 'ok')).toEqual(['ok', 'ok', 'ok']);
    expect(new Set(checks.map((c) => c.jti)).size).toBe(3);
    expect(new Set(checks.map((c) => c.proofJkt)).size).toBe(1);
    for (const check of checks) expect(check.tokenJkt).toBe(check.proofJkt);
    // The IdP demanded its nonce on PAR and token requests: the login only completed because openid-client's handle retried with it.
    const user = await storedSession(redis, cookieHeader, [TEST_SESSION_SECRET]);
    expect(user.tokenType.toLowerCase()).toBe('dpop');
    expect(user.dpopKey?.d).toEqual(expect.any(String));
  });

  test('the upstream sees Authorization: DPoP and the proof, never a browser-sent DPoP header', async () => {
    const { cookieHeader } = await loginThroughGateway(a.url);
    const res = await api(a, cookieHeader, '/api/echo/x').set('DPoP', 'forged.proof.value');
    expect(res.status).toBe(200);
    const headers = res.body.headers as Record<string, string>;
    expect(headers.authorization).toMatch(/^DPoP \S+$/);
    expect(headers.dpop).not.toBe('forged.proof.value');
    expect(headers.dpop?.split('.')).toHaveLength(3);
    const open = await request(a.gateway.url).get('/api/open/x').set('x-csrf', '1').set('DPoP', 'forged.proof.value');
    expect(open.body.headers.dpop).toBeUndefined();
  });

  test('two sessions have two keys', async () => {
    const first = await loginThroughGateway(a.url);
    const second = await loginThroughGateway(b.url);
    expect((await api(a, first.cookieHeader, '/api/dpop/1')).status).toBe(200);
    const one = lastCheck();
    expect((await api(a, second.cookieHeader, '/api/dpop/2')).status).toBe(200);
    const two = lastCheck();
    expect(one.ok && two.ok).toBe(true);
    expect(one.proofJkt).not.toBe(two.proofJkt);
  });

  test('a refresh keeps the binding: the renewed token is bound to the same key', async () => {
    const { cookieHeader } = await loginThroughGateway(a.url);
    expect((await api(a, cookieHeader, '/api/dpop/before')).status).toBe(200);
    const before = lastCheck();
    const refreshes = idp.counts.refreshToken;
    const refreshRequests = idp.tokenEndpoint.requests('refresh_token');
    await delay(3_200);
    expect((await api(b, cookieHeader, '/api/dpop/after')).status).toBe(200);
    const after = lastCheck();
    expect(idp.counts.refreshToken - refreshes).toBe(1);
    // Instance b had not used this key yet: the IdP answered use_dpop_nonce, and the refresh was sent once more with its nonce.
    expect(idp.tokenEndpoint.requests('refresh_token') - refreshRequests).toBe(2);
    expect(after.ok).toBe(true);
    expect(after.proofJkt).toBe(before.proofJkt);
    expect(after.tokenJkt).toBe(before.tokenJkt);
  });

  test('resource-bound (RFC 8707) and exchanged (RFC 8693) tokens are bound to the session key too', async () => {
    const { cookieHeader } = await loginThroughGateway(a.url);
    expect((await api(a, cookieHeader, '/api/dpop/own')).status).toBe(200);
    const own = lastCheck();
    expect((await api(b, cookieHeader, '/api/orders/1')).status).toBe(200);
    const resource = lastCheck();
    expect((await api(a, cookieHeader, '/api/billing/1')).status).toBe(200);
    const exchanged = lastCheck();
    for (const check of [resource, exchanged]) {
      expect(check.ok).toBe(true);
      expect(check.proofJkt).toBe(own.proofJkt);
      expect(check.tokenJkt).toBe(own.proofJkt);
    }
  });

  test('a WebSocket handshake carries a valid proof', async () => {
    const { cookieHeader } = await loginThroughGateway(a.url);
    const socket = new WebSocket(`${a.url.replace('http', 'ws')}/api/dpop/ws`, { headers: { cookie: cookieHeader, origin: a.url } });
    sockets.push(socket);
    expect(await upgradeOutcome(socket)).toBe(101);
    socket.send('hi');
    expect(await nextMessage(socket)).toBe('echo:hi');
    const check = lastCheck();
    expect(check).toMatchObject({ websocket: true, ok: true, method: 'GET', path: '/api/dpop/ws' });
    expect(check.tokenJkt).toBe(check.proofJkt);
    socket.close();
  });
});

describe("the upstream's nonce (RFC 9449 §9)", () => {
  test('a buffered request is retried once with the nonce, which later requests then carry; a streamed body gets the 401 and the next request the nonce', async () => {
    const { cookieHeader } = await loginThroughGateway(a.url);
    upstream.requireNonce = true;
    try {
      upstream.rotateNonce();
      let before = upstream.checks.length;
      const small = await request(a.gateway.url).post('/api/dpop/small').set('Cookie', cookieHeader).set('x-csrf', '1').send('x'.repeat(100));
      expect(small.status).toBe(200);
      expect(upstream.checks.slice(before).map((c) => [c.error ?? 'ok', c.bodyBytes])).toEqual([
        ['use_dpop_nonce', 100],
        ['ok', 100],
      ]);
      before = upstream.checks.length;
      expect((await api(a, cookieHeader, '/api/dpop/again')).status).toBe(200);
      expect(upstream.checks.slice(before).map((c) => c.error ?? 'ok')).toEqual(['ok']);

      upstream.rotateNonce();
      before = upstream.checks.length;
      // Larger than BFF_PROXY_BUFFER_BYTES: streamed, cannot be sent twice.
      const large = await request(a.gateway.url).post('/api/dpop/large').set('Cookie', cookieHeader).set('x-csrf', '1').send('y'.repeat(4096));
      expect(large.status).toBe(401);
      expect(large.headers['www-authenticate']).toContain('use_dpop_nonce');
      expect(upstream.checks.slice(before).map((c) => c.error ?? 'ok')).toEqual(['use_dpop_nonce']);
      before = upstream.checks.length;
      expect((await api(a, cookieHeader, '/api/dpop/next')).status).toBe(200);
      expect(upstream.checks.slice(before).map((c) => c.error ?? 'ok')).toEqual(['ok']);
    } finally {
      upstream.requireNonce = false;
    }
  });
});

describe("the gateway's own tokens", () => {
  test("a client-credentials route: the token is bound to the gateway instance's key", async () => {
    const res = await request(a.gateway.url).get('/api/client/x').set('x-csrf', '1');
    expect(res.status).toBe(200);
    const check = lastCheck();
    expect(check.ok).toBe(true);
    expect(check.tokenJkt).toBe(check.proofJkt);
    const { cookieHeader } = await loginThroughGateway(a.url);
    expect((await api(a, cookieHeader, '/api/dpop/user')).status).toBe(200);
    expect(lastCheck().proofJkt).not.toBe(check.proofJkt);
  });
});

describe('the private key stays secret', () => {
  test('the private key is nowhere in Redis (raw, hex, base64, base64url) nor in any log line', async () => {
    const { cookieHeader } = await loginThroughGateway(a.url);
    expect((await api(a, cookieHeader, '/api/dpop/x')).status).toBe(200);
    const d = (await storedSession(redis, cookieHeader, [TEST_SESSION_SECRET])).dpopKey?.d as string;
    const scalar = Buffer.from(d, 'base64url');
    const forms = [d, scalar.toString('hex'), scalar.toString('base64'), scalar.toString('base64url'), scalar.toString('latin1')];
    // Values as the bytes Redis holds (session records are binary), searched for the raw scalar too.
    const values = await everythingInRedis(redis);
    expect(values.length).toBeGreaterThan(0);
    for (const form of [...forms.map((f) => Buffer.from(f, 'latin1')), ...forms.map((f) => Buffer.from(f)), scalar]) expect(values.some((value) => value.includes(form))).toBe(false);
    const logs = [...a.logs, ...b.logs].join('');
    for (const form of forms) expect(logs.includes(form)).toBe(false);
  });
});

describe('an IdP that ignores DPoP', () => {
  test('under BFF_DPOP=true, a Bearer token from the IdP refuses the login with a clear page and a logged reason', async () => {
    const stack = await startStack({ idp: { dpop: { off: true } }, env: { BFF_DPOP: 'true' } });
    try {
      const result = await followRedirects(new CookieJar(), `${stack.gw.url}/auth/login`);
      expect(result.status).toBe(400);
      expect(result.url).toContain('/auth/callback');
      expect(result.body).toContain('dpop_not_honoured');
      expect(result.body).toContain('DPoP');
      expect(stack.gw.logs.join('')).toContain('"reason":"dpop_not_honoured"');
      expect((await request(stack.gw.url).get('/auth/user')).status).toBe(401);
    } finally {
      await stack.close();
    }
  });

  test('without BFF_DPOP the same IdP signs users in with Bearer tokens, as before', async () => {
    const stack = await startStack({ idp: { dpop: { off: true } } });
    try {
      const { cookieHeader } = await loginThroughGateway(stack.gw.url);
      const res = await request(stack.gw.url).get('/api/echo/x').set('Cookie', cookieHeader).set('x-csrf', '1');
      expect(res.status).toBe(200);
      expect(res.body.headers.authorization).toMatch(/^Bearer /);
      expect(res.body.headers.dpop).toBeUndefined();
    } finally {
      await stack.close();
    }
  });
});
