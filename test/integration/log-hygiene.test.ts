import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { SignJWT } from 'jose';
import request from 'supertest';
import { CookieJar, followRedirects, loginThroughGateway } from '../support/browser-flow.ts';
import { startEcho, type EchoServer } from '../support/echo.ts';
import { reserveGatewayUrl, startTestGateway, TEST_SESSION_SECRET, type TestGateway } from '../support/gateway.ts';
import { startIdp, TEST_CLIENT_ID, TEST_CLIENT_SECRET, type TestIdp } from '../support/idp.ts';
import { getFreePort } from '../support/ports.ts';
import { setCookie } from '../support/stack.ts';

const ACCESS_TOKEN_TTL_SEC = 2;
const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

let idp: TestIdp;
let echo: EchoServer;
let gw: TestGateway;
let withSub: TestGateway;
/** Behind a provider that refuses and fails (the test IdP's programmable token endpoint). */
let quirky: TestGateway;
const tokenResponses: Array<Record<string, unknown>> = [];

beforeAll(async () => {
  const url = await reserveGatewayUrl();
  const subUrl = await reserveGatewayUrl();
  const quirkyUrl = await reserveGatewayUrl();
  idp = await startIdp({
    redirectUris: [`${url}/auth/callback`, `${subUrl}/auth/callback`, `${quirkyUrl}/auth/callback`],
    postLogoutRedirectUris: [`${url}/`, `${subUrl}/`, `${quirkyUrl}/`],
    backchannelLogoutUri: `${url}/auth/backchannel-logout`,
    accessTokenTtl: ACCESS_TOKEN_TTL_SEC,
    rotateRefreshToken: true,
  });
  idp.provider.on('grant.success', (ctx) => {
    if (ctx.body && typeof ctx.body === 'object') tokenResponses.push({ ...(ctx.body as Record<string, unknown>) });
  });
  echo = await startEcho();
  // Nothing listens on the closed port: calls to /api/down are 502s.
  const routes = [
    { prefix: '/api/echo', target: echo.url, token: 'user' },
    { prefix: '/api/down', target: `http://127.0.0.1:${await getFreePort()}`, token: 'none' },
  ];
  // startTestGateway logs at trace level and keeps every line.
  gw = await startTestGateway({ url, issuer: idp.issuer, routes, env: { BFF_REFRESH_SKEW: '0' } });
  withSub = await startTestGateway({ url: subUrl, issuer: idp.issuer, routes, env: { BFF_LOG_SUB: 'true' } });
  quirky = await startTestGateway({ url: quirkyUrl, issuer: idp.issuer, routes, env: { BFF_REFRESH_SKEW: '0' } });
});
afterAll(async () => {
  await quirky?.close();
  await withSub?.close();
  await gw?.close();
  await echo?.close();
  await idp?.close();
});

function logoutToken(sub: string, sid: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: idp.issuer, aud: TEST_CLIENT_ID, iat: now, exp: now + 120, jti: randomUUID(), sub, sid, events: { [BACKCHANNEL_EVENT]: {} } })
    .setProtectedHeader({ alg: 'RS256', kid: idp.signingKey.kid, typ: 'logout+jwt' })
    .sign(idp.signingKey.privateKey);
}

function accessLines(logs: string[]): Array<Record<string, unknown>> {
  return logs
    .join('')
    .split('\n')
    .filter((line) => line.includes('"request completed"') || line.includes('"request errored"'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('at trace level, through login, API calls, refresh, logout and back-channel logout', () => {
  const secrets: Record<string, string> = {};

  beforeAll(async () => {
    const base = gw.gateway.url;
    // Login by hand, to hold the authorization code and the transaction cookie.
    const jar = new CookieJar();
    const back = await followRedirects(jar, `${gw.url}/auth/login`, { stopAt: (u) => u.pathname === '/auth/callback' });
    const callback = new URL(back.location as string);
    secrets.code = callback.searchParams.get('code') as string;
    secrets.state = callback.searchParams.get('state') as string;
    secrets.txCookie = jar.get(gw.url, 'bff-tx') as string;
    const done = await request(base)
      .get(callback.pathname + callback.search)
      .set('Cookie', `bff-tx=${secrets.txCookie}`);
    expect(done.status).toBe(302);
    const cookie = (setCookie(done.headers, 'bff') as string).split(';')[0] as string;
    secrets.cookie = cookie.slice('bff='.length);
    secrets.cookieDecoded = decodeURIComponent(secrets.cookie);
    // s:<store id>.<session key>.<signature>: the session key half must never appear on its own either.
    secrets.sessionKey = secrets.cookieDecoded.split('.')[1] as string;

    const user = await request(base).get('/auth/user').set('Cookie', cookie);
    expect(user.status).toBe(200);
    const api = () => request(base).get('/api/echo/x?code=query-code-value').set('Cookie', cookie).set('x-csrf', '1').set('Authorization', 'Bearer browser-token-value');
    expect((await api()).status).toBe(200);
    await delay(ACCESS_TOKEN_TTL_SEC * 1000 + 200);
    const refreshed = await api();
    expect(refreshed.status).toBe(200);
    expect(idp.counts.refreshToken).toBe(1);
    // A replayed callback: the code is used, the transaction gone.
    expect(
      (
        await request(base)
          .get(callback.pathname + callback.search)
          .set('Cookie', `bff-tx=${secrets.txCookie}`)
      ).status,
    ).toBe(400);
    expect((await request(base).post('/auth/logout').set('Cookie', cookie).set('x-csrf', '1')).status).toBe(200);

    // A second session, ended over the back channel.
    const second = await loginThroughGateway(gw.url);
    const secondUser = await request(base).get('/auth/user').set('Cookie', second.cookieHeader);
    secrets.secondCookie = second.cookieHeader.slice('bff='.length);
    secrets.logoutToken = await logoutToken(secondUser.body.sub as string, secondUser.body.claims.sid as string);
    const logout = await request(base)
      .post('/auth/backchannel-logout')
      .type('form')
      .send(new URLSearchParams({ logout_token: secrets.logoutToken }).toString());
    expect(logout.status).toBe(200);

    expect(tokenResponses.length).toBe(3);
    tokenResponses.forEach((tokens, i) => {
      for (const name of ['access_token', 'refresh_token', 'id_token']) {
        if (typeof tokens[name] === 'string') secrets[`${name} #${i + 1}`] = tokens[name] as string;
      }
    });
    secrets.clientSecret = TEST_CLIENT_SECRET;
    secrets.sessionSecret = TEST_SESSION_SECRET;
    secrets.browserToken = 'browser-token-value';
    secrets.queryCode = 'query-code-value';
  }, 30_000);

  test('every secret was seen: three token responses, each with all three tokens', () => {
    for (let i = 1; i <= 3; i++) for (const name of ['access_token', 'refresh_token', 'id_token']) expect(secrets[`${name} #${i}`]).toEqual(expect.any(String));
    expect(Object.values(secrets).every((value) => typeof value === 'string' && value.length >= 8)).toBe(true);
  });

  test('no log line holds a token, a code, a cookie or a secret', () => {
    const logs = gw.logs.join('');
    expect(logs).toContain('login completed');
    expect(logs).toContain('back-channel logout');
    // Debug lines are there too (the refresh logs one): nothing is hidden by the level.
    expect(logs).toContain('"level":20');
    expect(logs.length).toBeGreaterThan(3000);
    const leaked = Object.entries(secrets)
      .filter(([, value]) => logs.includes(value))
      .map(([name]) => name);
    expect(leaked).toEqual([]);
  });

  test('access log lines: method, path without query, route, status, durations, request id, session yes/no, no sub by default', () => {
    const lines = accessLines(gw.logs);
    const apiLines = lines.filter((l) => (l.req as { path: string }).path === '/api/echo/x');
    expect(apiLines).toHaveLength(2);
    for (const line of apiLines) {
      expect(line).toMatchObject({ level: 30, route: '/api/echo', session: true, res: { statusCode: 200 }, req: { method: 'GET' } });
      expect(line.reqId).toEqual(expect.any(String));
      expect(line.responseTime).toEqual(expect.any(Number));
      expect(line.upstreamTime).toEqual(expect.any(Number));
      expect(line.upstreamTime as number).toBeLessThanOrEqual((line.responseTime as number) + 1);
      expect(line).not.toHaveProperty('sub');
    }
    const login = lines.find((l) => (l.req as { path: string }).path === '/auth/login');
    expect(login).toMatchObject({ route: '/auth/login', session: false });
    expect(login).not.toHaveProperty('upstreamTime');
    const userLine = lines.find((l) => (l.req as { path: string }).path === '/auth/user');
    expect(userLine).toMatchObject({ route: '/auth/user', session: true });
  });

  test('a 5xx is an error-level line, without a stack trace', async () => {
    expect((await request(gw.gateway.url).get('/api/down/x').set('x-csrf', '1')).status).toBe(502);
    const line = accessLines(gw.logs).find((l) => (l.req as { path: string }).path === '/api/down/x');
    expect(line).toMatchObject({ level: 50, route: '/api/down', res: { statusCode: 502 }, session: false, msg: 'request errored' });
    expect(line).not.toHaveProperty('err');
    expect(line?.upstreamTime).toEqual(expect.any(Number));
  });
});

describe('at trace level, through a quirky provider: a code exchange refused with a challenge, a failing refresh, a refused refresh', () => {
  const secrets: Record<string, string> = {};

  beforeAll(async () => {
    const base = quirky.gateway.url;
    const api = (cookie: string) => request(base).get('/api/echo/x').set('Cookie', cookie).set('x-csrf', '1');
    const tokensOf = (from: number): Record<string, unknown> => tokenResponses.slice(from).at(-1) as Record<string, unknown>;

    // A login whose code exchange the provider refuses (401 + WWW-Authenticate), quoting the code back in its description.
    const jar = new CookieJar();
    const back = await followRedirects(jar, `${quirky.url}/auth/login`, { stopAt: (u) => u.pathname === '/auth/callback' });
    const callback = new URL(back.location as string);
    secrets.refusedCode = callback.searchParams.get('code') as string;
    secrets.refusedState = callback.searchParams.get('state') as string;
    secrets.refusedTxCookie = jar.get(quirky.url, 'bff-tx') as string;
    idp.tokenEndpoint.answer(
      'authorization_code',
      { status: 401, error: 'invalid_client', description: `client authentication failed for code ${secrets.refusedCode}`, wwwAuthenticate: 'Basic realm="idp"' },
      1,
    );
    const refused = await request(base)
      .get(callback.pathname + callback.search)
      .set('Cookie', `bff-tx=${secrets.refusedTxCookie}`);
    expect(refused.status).toBe(400);

    // A session whose refresh fails: the provider answers 500, then drops the connection (after the back-off).
    let from = tokenResponses.length;
    const failing = await loginThroughGateway(quirky.url);
    const failingTokens = tokensOf(from);
    await delay(ACCESS_TOKEN_TTL_SEC * 1000 + 200);
    idp.tokenEndpoint.answer('refresh_token', { status: 500, body: `refresh of ${String(failingTokens.refresh_token)} failed` });
    try {
      expect((await api(failing.cookieHeader)).status).toBe(503);
    } finally {
      idp.tokenEndpoint.clear();
    }

    // A session whose refresh the provider refuses, echoing the refresh token in its description.
    from = tokenResponses.length;
    const dead = await loginThroughGateway(quirky.url);
    const deadTokens = tokensOf(from);
    await delay(ACCESS_TOKEN_TTL_SEC * 1000 + 200);
    idp.tokenEndpoint.answer('refresh_token', { error: 'invalid_request', description: `unknown refresh token ${String(deadTokens.refresh_token)}` });
    try {
      expect((await api(dead.cookieHeader)).status).toBe(401);
    } finally {
      idp.tokenEndpoint.clear();
    }

    for (const [label, tokens] of [
      ['failing', failingTokens],
      ['dead', deadTokens],
    ] as const) {
      for (const name of ['access_token', 'refresh_token', 'id_token']) if (typeof tokens[name] === 'string') secrets[`${label} ${name}`] = tokens[name] as string;
    }
    secrets.failingCookie = failing.cookieHeader.slice('bff='.length);
    secrets.deadCookie = dead.cookieHeader.slice('bff='.length);
    secrets.clientSecret = TEST_CLIENT_SECRET;
    secrets.sessionSecret = TEST_SESSION_SECRET;
  }, 30_000);

  test('the failures were logged, with their reasons', () => {
    const logs = quirky.logs.join('');
    expect(logs).toContain('"reason":"invalid_client"');
    expect(logs).toContain('token refresh failed; session kept');
    expect(logs).toContain('"reason":"http_500"');
    expect(logs).toContain('refresh token rejected; session ended');
    expect(logs).toContain('"reason":"invalid_request"');
    expect(Object.keys(secrets).filter((name) => name.includes('refresh_token'))).toHaveLength(2);
  });

  test("no log line holds the code, a token, a cookie, a secret or the provider's description quoting them", () => {
    const logs = quirky.logs.join('');
    const leaked = Object.entries(secrets)
      .filter(([, value]) => logs.includes(value))
      .map(([name]) => name);
    expect(leaked).toEqual([]);
    expect(logs).not.toContain('client authentication failed for code');
    expect(logs).not.toContain('unknown refresh token');
  });
});

test('with BFF_LOG_SUB=true the access log names the user', async () => {
  const { cookieHeader } = await loginThroughGateway(withSub.url);
  expect((await request(withSub.gateway.url).get('/api/echo/y').set('Cookie', cookieHeader).set('x-csrf', '1')).status).toBe(200);
  const line = accessLines(withSub.logs).find((l) => (l.req as { path: string }).path === '/api/echo/y');
  expect(line).toMatchObject({ route: '/api/echo', session: true, sub: 'alice' });
  const anonymous = await request(withSub.gateway.url).get('/auth/user');
  expect(anonymous.status).toBe(401);
  const anonymousLine = accessLines(withSub.logs).find((l) => (l.req as { path: string }).path === '/auth/user' && (l.res as { statusCode: number }).statusCode === 401);
  expect(anonymousLine).toMatchObject({ session: false });
  expect(anonymousLine).not.toHaveProperty('sub');
});
