import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import request from 'supertest';
import { setTimeout as delay } from 'node:timers/promises';
import { loginThroughGateway } from '../support/browser-flow.ts';
import { startEcho, type EchoServer } from '../support/echo.ts';
import { reserveGatewayUrl, startTestGateway, type TestGateway } from '../support/gateway.ts';
import { startIdp, TEST_CLIENT_ID, TEST_CLIENT_SECRET, TOKEN_EXCHANGE_GRANT, type TestIdp } from '../support/idp.ts';
import { startJwtUpstream, type JwtUpstream } from '../support/jwt-upstream.ts';
import { everythingInRedis, secretForms } from '../support/redis-values.ts';
import { rawRedis } from '../support/stack.ts';

/*
 * Route tokens end to end: the real test IdP (RFC 8707 resource indicators,
 * an RFC 8693 token-exchange grant), two gateway instances sharing the test
 * Redis, and resource servers that verify the JWTs they get with jose against
 * the IdP's JWKS. Refresh tokens rotate, so a route token fetched twice, or a
 * rotated refresh token not kept, would end the session at the IdP.
 */

const ORDERS = 'https://orders.test';
const BILLING = 'billing-api';

let idp: TestIdp;
let echo: EchoServer;
let orders: JwtUpstream;
let billing: JwtUpstream;
let a: TestGateway;
let b: TestGateway;
let redis: Awaited<ReturnType<typeof rawRedis>>;
const tokenResponses: Array<Record<string, string>> = [];

beforeAll(async () => {
  const url = await reserveGatewayUrl();
  idp = await startIdp({
    redirectUris: [`${url}/auth/callback`],
    postLogoutRedirectUris: [`${url}/`],
    grantTypes: ['authorization_code', 'refresh_token', TOKEN_EXCHANGE_GRANT],
    rotateRefreshToken: true,
  });
  idp.provider.on('grant.success', (ctx) => tokenResponses.push({ ...(ctx.body as Record<string, string>) }));
  echo = await startEcho();
  orders = await startJwtUpstream({ issuer: idp.issuer, audience: ORDERS });
  billing = await startJwtUpstream({ issuer: idp.issuer, audience: BILLING });
  const routes = [
    { prefix: '/api/plain', target: echo.url, token: 'user' },
    { prefix: '/api/orders', target: orders.url, token: 'user', resource: ORDERS },
    { prefix: '/api/billing', target: billing.url, token: 'exchange', audience: BILLING, scope: 'api:read' },
  ];
  // Two instances behind one public URL, sharing one Redis.
  a = await startTestGateway({ url, issuer: idp.issuer, routes, env: { BFF_REFRESH_SKEW: '0' } });
  b = await startTestGateway({ url, issuer: idp.issuer, routes, env: { BFF_REFRESH_SKEW: '0', BFF_PORT: '0' } });
  redis = await rawRedis();
});
afterAll(async () => {
  await redis?.close();
  await a?.close();
  await b?.close();
  await orders?.close();
  await billing?.close();
  await echo?.close();
  await idp?.close();
});
afterEach(() => {
  idp.exchange = { kind: 'issue' };
  idp.routeTokenTtl = 300;
  idp.tokenEndpoint.clear();
});

const api = (gateway: TestGateway, cookie: string, path: string) => request(gateway.gateway.url).get(path).set('Cookie', cookie).set('x-csrf', '1');
const over = (cookie: string, path: string, n = 20) => Promise.all(Array.from({ length: n }, (_, i) => api(i % 2 === 0 ? a : b, cookie, path)));
const problemCode = (res: { text: string }): unknown => (JSON.parse(res.text) as { code?: unknown }).code;

function storeKeyOf(cookie: string): string {
  const storeId = /^bff=s%3A([A-Za-z0-9_-]{22})\./.exec(cookie)?.[1];
  if (!storeId) throw new Error(`not a session cookie: ${cookie}`);
  return `bff:sess:{${storeId}}`;
}

async function revoke(token: string, hint: 'refresh_token'): Promise<void> {
  const res = await fetch(`${idp.issuer}/token/revocation`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${TEST_CLIENT_ID}:${TEST_CLIENT_SECRET}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token, token_type_hint: hint }),
  });
  expect(res.status).toBe(200);
}

describe('resource (RFC 8707) on a user route', () => {
  test('20 concurrent calls over two instances: one resource grant, and the upstream verifies a JWT whose aud is the resource', async () => {
    const { cookieHeader } = await loginThroughGateway(a.url);
    const before = { ...idp.counts };
    const responses = await over(cookieHeader, '/api/orders/list');
    expect(responses.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(responses[0]?.body.claims).toMatchObject({ aud: ORDERS, sub: 'alice', iss: idp.issuer });
    expect(idp.counts.resourceRefresh - before.resourceRefresh).toBe(1);
    // The session's own token was not refreshed for it, and is not what the resource server got.
    expect(idp.counts.refreshToken - before.refreshToken).toBe(1);
    expect(new Set(orders.tokens.slice(-20)).size).toBe(1);
    const plain = await api(b, cookieHeader, '/api/plain/x');
    expect(plain.status).toBe(200);
    expect(plain.body.headers.authorization).not.toBe(`Bearer ${orders.tokens.at(-1)}`);
  });

  test('a route token that expires is fetched again once; the rotated refresh token it brought is the one used', async () => {
    const { cookieHeader } = await loginThroughGateway(a.url);
    idp.routeTokenTtl = 2;
    const before = idp.counts.resourceRefresh;
    expect((await api(a, cookieHeader, '/api/orders/1')).status).toBe(200);
    expect((await api(b, cookieHeader, '/api/orders/2')).status).toBe(200);
    expect(idp.counts.resourceRefresh - before).toBe(1);
    const first = orders.tokens.at(-1);
    await delay(2_200);
    const responses = await over(cookieHeader, '/api/orders/3', 10);
    expect(responses.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(idp.counts.resourceRefresh - before).toBe(2);
    const renewed = new Set(orders.tokens.slice(-10));
    expect(renewed.size).toBe(1);
    expect(renewed.has(first ?? '')).toBe(false);
    // With rotation, a refresh token used twice would have revoked the grant: the session still works.
    expect((await api(a, cookieHeader, '/api/plain/x')).status).toBe(200);
  });

  test('a resource the IdP refuses (invalid_target): 403 route_token_refused, the session kept', async () => {
    const { cookieHeader } = await loginThroughGateway(a.url);
    idp.tokenEndpoint.answer('refresh_token', { error: 'invalid_target' }, 1);
    const res = await api(a, cookieHeader, '/api/orders/x');
    expect(res.status).toBe(403);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(problemCode(res)).toBe('route_token_refused');
    expect((await api(b, cookieHeader, '/api/plain/x')).status).toBe(200);
    expect(a.logs.join('')).toContain('"reason":"invalid_target"');
  });
});

describe('token exchange (RFC 8693)', () => {
  test('20 concurrent calls over two instances: one exchange, and the upstream verifies a JWT whose aud is the audience', async () => {
    const { cookieHeader } = await loginThroughGateway(a.url);
    const before = idp.counts.tokenExchange;
    const responses = await over(cookieHeader, '/api/billing/invoices');
    expect(responses.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(responses[0]?.body.claims).toMatchObject({ aud: BILLING, sub: 'alice', scope: 'api:read' });
    expect(idp.counts.tokenExchange - before).toBe(1);
    expect(new Set(billing.tokens.slice(-20)).size).toBe(1);
  });

  test('an exchange the IdP refuses: 403 token_exchange_refused, the session kept and a plain route still served', async () => {
    const { cookieHeader } = await loginThroughGateway(a.url);
    idp.exchange = { kind: 'refuse', error: 'invalid_target' };
    const res = await api(a, cookieHeader, '/api/billing/x');
    expect(res.status).toBe(403);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(problemCode(res)).toBe('token_exchange_refused');
    expect((await api(b, cookieHeader, '/api/plain/x')).status).toBe(200);
    expect(await redis.exists(storeKeyOf(cookieHeader))).toBe(1);
  });

  test('a subject token that died at the IdP: one forced refresh, the exchange retried with the new token and served', async () => {
    const { cookieHeader } = await loginThroughGateway(a.url);
    const sessionToken = ((await api(a, cookieHeader, '/api/plain/x')).body.headers.authorization as string).slice('Bearer '.length);
    // Only the access token dies (oidc-provider's revocation endpoint would revoke the whole grant with it).
    const subject = await idp.provider.AccessToken.find(sessionToken);
    expect(subject).toBeDefined();
    await subject?.destroy();
    const before = { ...idp.counts };
    const res = await api(b, cookieHeader, '/api/billing/x');
    expect(res.status).toBe(200);
    expect(res.body.claims).toMatchObject({ aud: BILLING });
    expect(idp.counts.refreshToken - before.refreshToken).toBe(1);
    expect(idp.counts.tokenExchange - before.tokenExchange).toBe(1);
  });

  test('a dead subject token whose refresh the IdP refuses too: 401 session_expired, the session gone', async () => {
    const { cookieHeader } = await loginThroughGateway(a.url);
    // Revoking the refresh token revokes the whole grant at oidc-provider: the access token dies with it.
    await revoke(tokenResponses.at(-1)?.refresh_token as string, 'refresh_token');
    const res = await api(a, cookieHeader, '/api/billing/x');
    expect(res.status).toBe(401);
    expect(problemCode(res)).toBe('session_expired');
    expect(await redis.exists(storeKeyOf(cookieHeader))).toBe(0);
  });

  test.each([
    ['unreachable', 'stop'],
    ['answering 500', 'fail'],
  ] as const)('the IdP %s during an exchange: 503 idp_unavailable, the session kept', async (_name, how) => {
    const { cookieHeader } = await loginThroughGateway(a.url);
    if (how === 'stop') await idp.stop();
    else idp.exchange = { kind: 'fail' };
    try {
      const res = await api(a, cookieHeader, '/api/billing/x');
      expect(res.status).toBe(503);
      expect(problemCode(res)).toBe('idp_unavailable');
      expect(await redis.exists(storeKeyOf(cookieHeader))).toBe(1);
      // The session's own token is not due: a plain route does not need the IdP.
      expect((await api(b, cookieHeader, '/api/plain/x')).status).toBe(200);
    } finally {
      await idp.start();
    }
  });
});

describe('at rest', () => {
  test('no route token, nor any part of one, is readable in Redis', async () => {
    const { cookieHeader } = await loginThroughGateway(a.url);
    expect((await api(a, cookieHeader, '/api/orders/x')).status).toBe(200);
    expect((await api(b, cookieHeader, '/api/billing/x')).status).toBe(200);
    const secrets = [orders.tokens.at(-1), billing.tokens.at(-1)].flatMap((token) => (token ? [token, ...token.split('.').slice(1)] : []));
    expect(secrets.length).toBe(6);
    // Values as the bytes Redis holds (session records are binary), searched for the bytes a token's segments encode too.
    const values = await everythingInRedis(redis);
    expect(values.length).toBeGreaterThan(0);
    const forms = secrets.flatMap(secretForms);
    expect(values.filter((value) => forms.some((form) => value.includes(form))).map((value) => value.length)).toEqual([]);
  });
});
