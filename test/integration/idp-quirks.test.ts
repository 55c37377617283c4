import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { setTimeout as delay } from 'node:timers/promises';
import request from 'supertest';
import { CookieJar, followRedirects, loginThroughGateway } from '../support/browser-flow.ts';
import { startEcho, type EchoServer } from '../support/echo.ts';
import { reserveGatewayUrl, startTestGateway, type TestGateway } from '../support/gateway.ts';
import { startIdp, type IdpOptions, type TestIdp } from '../support/idp.ts';
import { scrape } from '../support/metrics.ts';
import { rawRedis, setCookie } from '../support/stack.ts';
import type { TokenAnswer } from '../support/token-endpoint.ts';

/**
 * The answers real providers give that oidc-provider does not, played by the
 * test IdP's programmable token endpoint (real HTTP in front of a real
 * provider). Each case: what the SPA sees, what becomes of the session on
 * both instances, how many token requests the provider received, and the
 * reason the gateway logs.
 */

/** With the default 30 s skew a 2 s token is refreshed at half its life: 1 s after login. */
const ACCESS_TOKEN_TTL_SEC = 2;
const untilRefreshDue = (): Promise<void> => delay((ACCESS_TOKEN_TTL_SEC * 1000) / 2 + 150);

let redis: Awaited<ReturnType<typeof rawRedis>>;
let echo: EchoServer;

beforeAll(async () => {
  redis = await rawRedis();
  echo = await startEcho();
});
afterAll(async () => {
  await echo?.close();
  await redis?.close();
});

type Pair = { idp: TestIdp; a: TestGateway; b: TestGateway; close(): Promise<void> };

/** One IdP and two gateway instances behind one public URL, sharing the test Redis, as two pods behind a load balancer. */
async function startPair(options: Omit<IdpOptions, 'redirectUris'> & { backchannel?: boolean }): Promise<Pair> {
  const url = await reserveGatewayUrl();
  const { backchannel, ...idpOptions } = options;
  const idp = await startIdp({
    redirectUris: [`${url}/auth/callback`],
    postLogoutRedirectUris: [`${url}/`],
    ...(backchannel ? { backchannelLogoutUri: `${url}/auth/backchannel-logout` } : {}),
    accessTokenTtl: ACCESS_TOKEN_TTL_SEC,
    ...idpOptions,
  });
  const routes = [{ prefix: '/api/echo', target: echo.url, token: 'user' }];
  const a = await startTestGateway({ url, issuer: idp.issuer, routes });
  const b = await startTestGateway({ url, issuer: idp.issuer, routes, env: { BFF_PORT: '0' } });
  return {
    idp,
    a,
    b,
    async close() {
      await b.close();
      await a.close();
      await idp.close();
    },
  };
}

type Session = { cookie: string; storeId: string; storeKey: string };

async function login(pair: Pair, account = 'alice'): Promise<Session> {
  pair.idp.nextAccount = account;
  try {
    const jar = new CookieJar();
    const { cookieHeader } = await loginThroughGateway(pair.a.url, jar);
    const storeId = /^s:([^.]+)\./.exec(decodeURIComponent(jar.get(pair.a.url, 'bff') ?? ''))?.[1] as string;
    expect(storeId).toEqual(expect.any(String));
    return { cookie: cookieHeader, storeId, storeKey: `bff:sess:{${storeId}}` };
  } finally {
    pair.idp.nextAccount = 'alice';
  }
}

const api = (gateway: TestGateway, session: Session) => request(gateway.gateway.url).get('/api/echo/x').set('Cookie', session.cookie).set('x-csrf', '1');
const user = (gateway: TestGateway, session: Session) => request(gateway.gateway.url).get('/auth/user').set('Cookie', session.cookie);

/** The sid/sub index keys that name this session. */
async function indexEntries(storeId: string): Promise<string[]> {
  const named: string[] = [];
  for (const key of await redis.keys('bff:idx:*')) if ((await redis.sMembers(key)).includes(storeId)) named.push(key);
  return named;
}

async function expectKept(pair: Pair, session: Session): Promise<void> {
  expect((await user(pair.a, session)).status).toBe(200);
  expect((await user(pair.b, session)).status).toBe(200);
  expect(await redis.exists(session.storeKey)).toBe(1);
}

async function expectEnded(pair: Pair, session: Session): Promise<void> {
  expect((await user(pair.a, session)).status).toBe(401);
  expect((await user(pair.b, session)).status).toBe(401);
  expect(await redis.exists(session.storeKey)).toBe(0);
  expect(await indexEntries(session.storeId)).toEqual([]);
}

/** The JSON log lines both instances wrote from `from` on (their log arrays' lengths when the case began). */
function logLines(pair: Pair, from: { a: number; b: number }): Array<Record<string, unknown>> {
  return [...pair.a.logs.slice(from.a), ...pair.b.logs.slice(from.b)]
    .join('')
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

const logMark = (pair: Pair) => ({ a: pair.a.logs.length, b: pair.b.logs.length });
const backoffKeyOf = (session: Session): string => `bff:refresh-backoff:{${session.storeId}}`;

describe('a provider that refuses or fails refreshes and client logins', () => {
  let pair: Pair;
  beforeAll(async () => {
    pair = await startPair({ backchannel: true });
  });
  afterAll(async () => {
    await pair?.close();
  });
  afterEach(() => pair.idp.tokenEndpoint.clear());

  const REFUSALS: Array<[string, TokenAnswer, string]> = [
    ['invalid_request (LemonLDAP::NG on a dead refresh token)', { error: 'invalid_request', description: 'invalid refresh token' }, 'invalid_request'],
    ['unauthorized_client', { error: 'unauthorized_client' }, 'unauthorized_client'],
    ['a 401 challenge (WWW-Authenticate: Basic) and invalid_client', { status: 401, error: 'invalid_client', wwwAuthenticate: 'Basic realm="idp"' }, 'invalid_client'],
  ];

  test.each(REFUSALS)('refresh refused with %s: 401 session_expired, the record and its index entries gone, on both instances, after one token request', async (_name, answer, reason) => {
    const session = await login(pair);
    expect(await indexEntries(session.storeId)).toHaveLength(2);
    await untilRefreshDue();
    const mark = logMark(pair);
    const before = pair.idp.tokenEndpoint.requests('refresh_token');
    pair.idp.tokenEndpoint.answer('refresh_token', answer);

    const res = await api(pair.b, session);
    expect(res.status).toBe(401);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(res.text).code).toBe('session_expired');
    await expectEnded(pair, session);
    // Ended means ended: the next call asks nobody.
    expect((await api(pair.a, session)).status).toBe(401);
    expect(pair.idp.tokenEndpoint.requests('refresh_token') - before).toBe(1);
    const lines = logLines(pair, mark).filter((l) => l.event === 'refresh');
    expect(lines).toEqual([expect.objectContaining({ outcome: 'refused', reason, msg: 'refresh token rejected; session ended' })]);
  });

  const TRANSIENT: Array<[string, TokenAnswer, RegExp]> = [
    ['a 500 error page', { status: 500, body: '<html><body>Internal Server Error</body></html>', contentType: 'text/html' }, /^http_500$/],
    ['a 503 with temporarily_unavailable', { error: 'temporarily_unavailable', status: 503 }, /^http_503$/],
    ['a 429 without an error code', { status: 429, body: 'Too Many Requests' }, /^http_429$/],
    ['a dropped connection', { drop: true }, /^(UND_ERR_SOCKET|ECONNRESET|connection_dropped)$/],
    ['400 temporarily_unavailable', { error: 'temporarily_unavailable' }, /^temporarily_unavailable$/],
    ['400 slow_down', { error: 'slow_down' }, /^slow_down$/],
  ];

  test.each(TRANSIENT)(
    'refresh answered with %s: 503 and the session kept on both instances; three calls ask the IdP once; after the back-off the next call succeeds',
    async (_name, answer, reason) => {
      const session = await login(pair);
      await untilRefreshDue();
      const mark = logMark(pair);
      const before = pair.idp.tokenEndpoint.requests('refresh_token');
      pair.idp.tokenEndpoint.answer('refresh_token', answer);

      for (const gateway of [pair.a, pair.b, pair.a]) {
        const res = await api(gateway, session);
        expect(res.status).toBe(503);
        expect(JSON.parse(res.text).code).toBe('idp_unavailable');
        expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      }
      expect(pair.idp.tokenEndpoint.requests('refresh_token') - before).toBe(1);
      // The back-off is short-lived; its expiry is played below by deleting the marker.
      const pttl = await redis.pTTL(backoffKeyOf(session));
      expect(pttl).toBeGreaterThan(0);
      expect(pttl).toBeLessThanOrEqual(5000);
      const failed = logLines(pair, mark).filter((l) => l.event === 'refresh' && l.outcome === 'error');
      expect(failed).toHaveLength(1);
      expect(failed[0]?.msg).toBe('token refresh failed; session kept');
      expect(failed[0]?.reason).toMatch(reason);
      await expectKept(pair, session);

      pair.idp.tokenEndpoint.clear();
      await redis.del(backoffKeyOf(session));
      expect((await api(pair.b, session)).status).toBe(200);
      expect(pair.idp.tokenEndpoint.requests('refresh_token') - before).toBe(2);
    },
  );

  test('500 on refresh: 20 calls in 2 s over both instances cause at most 3 refresh attempts, all 503, and do not extend the idle timeout', async () => {
    const session = await login(pair);
    await untilRefreshDue();
    const mark = logMark(pair);
    const before = pair.idp.tokenEndpoint.requests('refresh_token');
    // When the store would expire the record (the idle timeout), as an instant between two bounds (the PTTL was read
    // at some moment between the two clock readings), so that a slow Redis answer cannot pass for a moved expiry.
    const idleEnd = async (): Promise<{ earliest: number; latest: number }> => {
      const asked = Date.now();
      const pttl = await redis.pTTL(session.storeKey);
      return { earliest: asked + pttl, latest: Date.now() + pttl };
    };
    const idleEndBefore = await idleEnd();
    pair.idp.tokenEndpoint.answer('refresh_token', { status: 500, body: 'Internal Server Error' });

    for (let i = 0; i < 20; i++) {
      const res = await api(i % 2 === 0 ? pair.a : pair.b, session);
      expect(res.status).toBe(503);
      await delay(100);
    }
    const attempts = pair.idp.tokenEndpoint.requests('refresh_token') - before;
    expect(attempts).toBeGreaterThanOrEqual(1);
    expect(attempts).toBeLessThanOrEqual(3);
    // Failed requests are no activity: the record's expiry has not moved (a touch would have moved it by over a second).
    expect((await idleEnd()).earliest).toBeLessThanOrEqual(idleEndBefore.latest + 5);
    const reasons = logLines(pair, mark)
      .filter((l) => l.event === 'refresh' && l.outcome === 'error')
      .map((l) => l.reason);
    expect(reasons.length).toBe(attempts);
    for (const r of reasons) expect(r).toBe('http_500');
    await expectKept(pair, session);
  });

  const CHALLENGES: Array<[string, TokenAnswer]> = [
    [
      'WWW-Authenticate: Basic with error="invalid_client" (as oidc-provider itself answers)',
      {
        status: 401,
        error: 'invalid_client',
        wwwAuthenticate: 'Basic realm="idp", error="invalid_client", error_description="client authentication failed"',
      },
    ],
    ['WWW-Authenticate: Basic realm only, invalid_client in the body', { status: 401, error: 'invalid_client', wwwAuthenticate: 'Basic realm="idp"' }],
    ['WWW-Authenticate: Basic realm only, no body at all', { status: 401, body: '', wwwAuthenticate: 'Basic realm="idp"' }],
  ];

  test.each(CHALLENGES)('the code exchange refused with 401 and %s: the error page, the log line and the metric name invalid_client', async (_name, answer) => {
    const jar = new CookieJar();
    const start = await followRedirects(jar, `${pair.a.url}/auth/login`, { stopAt: (url) => url.pathname === '/auth/callback' });
    const callback = new URL(start.location as string);
    const mark = logMark(pair);
    const requestsBefore = pair.idp.tokenEndpoint.requests('authorization_code');
    const grantsBefore = pair.idp.counts.authorizationCode;
    const failedBefore = (await scrape(pair.a.gateway.adminUrl)).value('bff_logins_failed_total', { reason: 'invalid_client' }) ?? 0;
    pair.idp.tokenEndpoint.answer('authorization_code', answer);

    const res = await request(pair.a.gateway.url)
      .get(callback.pathname + callback.search)
      .set('Cookie', `bff-tx=${jar.get(pair.a.url, 'bff-tx')}`)
      .set('Accept', 'text/html');
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.text).toContain('invalid_client');
    expect(res.text).not.toContain('failed validation');
    expect(setCookie(res.headers, 'bff')).toBeUndefined();
    expect(pair.idp.tokenEndpoint.requests('authorization_code') - requestsBefore).toBe(1);
    expect(pair.idp.counts.authorizationCode).toBe(grantsBefore);
    const failed = logLines(pair, mark).filter((l) => l.msg === 'login failed');
    expect(failed).toEqual([expect.objectContaining({ reason: 'invalid_client' })]);
    expect((await scrape(pair.a.gateway.adminUrl)).value('bff_logins_failed_total', { reason: 'invalid_client' })).toBe(failedBefore + 1);
  });

  test('refresh tokens never rotated, and not repeated in the refresh response: every refresh reuses the first one, on both instances', async () => {
    const session = await login(pair);
    const before = pair.idp.tokenEndpoint.requests('refresh_token');
    const grantsBefore = pair.idp.counts.refreshToken;
    pair.idp.tokenEndpoint.answer('refresh_token', { strip: ['refresh_token'] });
    await untilRefreshDue();
    const first = await api(pair.a, session);
    expect(first.status).toBe(200);
    await delay(ACCESS_TOKEN_TTL_SEC * 1000);
    const second = await api(pair.b, session);
    expect(second.status).toBe(200);
    expect(second.body.headers.authorization).not.toBe(first.body.headers.authorization);
    expect(pair.idp.tokenEndpoint.requests('refresh_token') - before).toBe(2);
    expect(pair.idp.counts.refreshToken - grantsBefore).toBe(2);
    await expectKept(pair, session);
  });
});

describe('a provider with the bare minimum: no revocation endpoint, no back-channel logout, no sid claim', () => {
  let pair: Pair;
  beforeAll(async () => {
    pair = await startPair({ revocation: false, backchannelLogout: false });
  });
  afterAll(async () => {
    await pair?.close();
  });

  test('logout without a revocation endpoint: the end-session URL, the session and its index entry gone on both instances, no revocation attempted', async () => {
    const session = await login(pair);
    const mark = logMark(pair);
    const res = await request(pair.b.gateway.url).post('/auth/logout').set('Cookie', session.cookie).set('x-csrf', '1');
    expect(res.status).toBe(200);
    expect(res.body.redirectUrl).toMatch(new RegExp(`^${pair.idp.issuer}/session/end\\?`));
    await expectEnded(pair, session);
    expect(pair.idp.counts.revocation).toBe(0);
    const lines = logLines(pair, mark);
    expect(lines.some((l) => l.msg === 'logout completed')).toBe(true);
    expect(lines.some((l) => l.msg === 'refresh token revocation failed')).toBe(false);
  });

  test('no sid claim: the session is indexed by sub alone, and refreshes and API calls work on both instances', async () => {
    const session = await login(pair);
    const me = await user(pair.a, session);
    expect(me.body.claims).not.toHaveProperty('sid');
    expect(await indexEntries(session.storeId)).toHaveLength(1);
    await untilRefreshDue();
    expect((await api(pair.b, session)).status).toBe(200);
    expect((await api(pair.a, session)).status).toBe(200);
    expect(pair.idp.counts.refreshToken).toBeGreaterThanOrEqual(1);
    await expectKept(pair, session);
  });

  test('no back-channel logout: discovery does not offer it, and the gateway still serves logins and logouts', async () => {
    const metadata = (await (await fetch(`${pair.idp.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(metadata.backchannel_logout_supported).toBeUndefined();
    expect(metadata.revocation_endpoint).toBeUndefined();
    const session = await login(pair);
    expect((await api(pair.a, session)).status).toBe(200);
    expect((await request(pair.a.gateway.url).post('/auth/logout').set('Cookie', session.cookie).set('x-csrf', '1')).status).toBe(200);
    await expectEnded(pair, session);
  });
});

describe('a provider that sends no sid in its logout tokens', () => {
  let pair: Pair;
  beforeAll(async () => {
    pair = await startPair({ backchannel: true, sidClaim: false });
  });
  afterAll(async () => {
    await pair?.close();
  });

  test('its back-channel logout (sub only) ends every session of that user on both instances and counts them', async () => {
    const first = await login(pair, 'frank');
    const second = await login(pair, 'frank');
    const bystander = await login(pair, 'alice');
    expect((await user(pair.a, first)).body.claims).not.toHaveProperty('sid');
    const mark = logMark(pair);
    // oidc-provider signs and POSTs a logout token with sub only (the client does not require the session).
    await pair.idp.sendBackchannelLogout('frank', 'unused-sid');
    await expectEnded(pair, first);
    await expectEnded(pair, second);
    await expectKept(pair, bystander);
    const lines = logLines(pair, mark).filter((l) => l.event === 'backchannel_logout');
    expect(lines).toEqual([expect.objectContaining({ sessions: 2, by: 'sub' })]);
  });

  test('a session a refused refresh ended leaves no index entry behind: a later logout of its user counts only the session it ends', async () => {
    const ended = await login(pair, 'erin');
    const alive = await login(pair, 'erin');
    await untilRefreshDue();
    pair.idp.tokenEndpoint.answer('refresh_token', { error: 'invalid_grant' });
    try {
      expect((await api(pair.a, ended)).status).toBe(401);
    } finally {
      pair.idp.tokenEndpoint.clear();
    }
    await expectEnded(pair, ended);
    const mark = logMark(pair);
    await pair.idp.sendBackchannelLogout('erin', 'unused-sid');
    await expectEnded(pair, alive);
    const lines = logLines(pair, mark).filter((l) => l.event === 'backchannel_logout');
    expect(lines).toEqual([expect.objectContaining({ sessions: 1, by: 'sub' })]);
  });
});
