import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import request from 'supertest';
import { CookieJar, followRedirects, loginThroughGateway } from '../support/browser-flow.ts';
import { reserveGatewayUrl, startTestGateway } from '../support/gateway.ts';
import { testRedisUrl } from '../support/redis.ts';
import { rawRedis, setCookie, startStack, type Stack } from '../support/stack.ts';

let stack: Stack;
let redis: Awaited<ReturnType<typeof rawRedis>>;
const COOKIE = 'bff';
const TX_COOKIE = 'bff-tx';

/** This suite compares the set of session keys before and after: it needs a Redis database no other suite writes to. */
const DB = 3;

beforeAll(async () => {
  stack = await startStack({ env: { BFF_REDIS_URL: testRedisUrl(DB) } });
  redis = await rawRedis(DB);
});
afterAll(async () => {
  await redis?.close();
  await stack?.close();
});

/** Starts a login in `jar` and stops where the IdP sends the browser back: the callback URL with code and state. */
async function loginUntilCallback(jar: CookieJar, returnTo = '/'): Promise<URL> {
  const start = new URL('/auth/login', stack.gw.url);
  start.searchParams.set('returnTo', returnTo);
  const result = await followRedirects(jar, start.href, { stopAt: (url) => url.pathname === '/auth/callback' });
  if (!result.location) throw new Error(`login did not reach the callback: ${result.hops.join(' ')}`);
  return new URL(result.location);
}

async function sessionKeys(): Promise<string[]> {
  return (await redis.keys('bff:sess:*')).sort();
}

/** A logged-in browser, for checking that a failed callback leaves its session alone. */
async function loggedIn(): Promise<{ jar: CookieJar; cookie: string }> {
  const { jar } = await loginThroughGateway(stack.gw.url);
  const cookie = `${COOKIE}=${jar.get(stack.gw.url, COOKIE)}`;
  return { jar, cookie };
}

async function expectStillLoggedIn(cookie: string): Promise<void> {
  const user = await request(stack.gw.url).get('/auth/user').set('Cookie', cookie);
  expect(user.status).toBe(200);
  expect(user.body.sub).toBe('alice');
}

describe('login', () => {
  test('a full login lands on returnTo with exactly one gateway cookie, and /auth/user shows the user but no token', async () => {
    const before = stack.tokenResponses.length;
    const { jar, finalUrl } = await loginThroughGateway(stack.gw.url, undefined, { returnTo: '/orders/42?tab=items#top' });
    expect(finalUrl).toBe(`${stack.gw.url}/orders/42?tab=items#top`);
    const gatewayCookies = jar.cookies(stack.gw.url).map((c) => c.name);
    expect(gatewayCookies).toEqual([COOKIE]);

    const user = await request(stack.gw.url).get('/auth/user').set('Cookie', jar.cookieHeader(stack.gw.url));
    expect(user.status).toBe(200);
    expect(user.headers['cache-control']).toBe('no-store');
    expect(user.body.sub).toBe('alice');
    expect(user.body.claims.name).toBe('Test User alice');
    expect(user.body.claims.email).toBe('alice@example.test');
    expect(Number.isInteger(user.body.session.expiresIn)).toBe(true);
    expect(user.body.session.expiresIn).toBeGreaterThan(43_100);
    expect(user.body.session.idleExpiresIn).toBe(1800);
    expect(user.body.logoutUrl).toMatch(/^\/auth\/logout\?sid=[A-Za-z0-9_-]+$/);
    const tokens = stack.tokenResponses.slice(before).at(-1) as Record<string, string>;
    for (const name of ['access_token', 'refresh_token', 'id_token']) {
      expect(typeof tokens[name]).toBe('string');
      expect(user.text).not.toContain(tokens[name]);
    }
  });

  test('the login request uses PAR, PKCE S256, state and nonce, and the transaction cookie is Lax and short-lived', async () => {
    const parBefore = stack.idp.counts.par;
    const res = await request(stack.gw.url).get('/auth/login?returnTo=/x');
    expect(res.status).toBe(302);
    const location = new URL(res.headers.location as string);
    expect(location.origin).toBe(stack.idp.issuer);
    // With PAR the browser only carries a request_uri; the parameters went server to server.
    expect(location.searchParams.get('request_uri')).toMatch(/^urn:ietf:params:oauth:request_uri:/);
    expect(location.searchParams.get('code_challenge')).toBeNull();
    expect(stack.idp.counts.par).toBe(parBefore + 1);
    const tx = setCookie(res.headers, TX_COOKIE) as string;
    expect(tx).toMatch(/; Max-Age=600;/);
    expect(tx).toMatch(/; HttpOnly/);
    expect(tx).toMatch(/; SameSite=Lax/);
    expect(tx).toMatch(/; Path=\//);
    expect(tx).not.toMatch(/Domain=/i);
    // The transaction lives server-side for 10 minutes, encrypted, and is not the cookie value.
    const keys = await redis.keys('bff:tx:*');
    const ttls = await Promise.all(keys.map((k) => redis.pTTL(k)));
    expect(Math.max(...ttls)).toBeGreaterThan(590_000);
    expect(Math.max(...ttls)).toBeLessThanOrEqual(600_000);
  });

  test('without PAR at the IdP the authorization URL carries S256 PKCE, state and nonce', async () => {
    const plain = await startStack({ idp: { par: false } });
    try {
      const res = await request(plain.gw.url).get('/auth/login');
      const location = new URL(res.headers.location as string);
      expect(location.searchParams.get('code_challenge_method')).toBe('S256');
      expect(location.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(location.searchParams.get('state')).toBeTruthy();
      expect(location.searchParams.get('nonce')).toBeTruthy();
      expect(location.searchParams.get('response_type')).toBe('code');
      expect(location.searchParams.get('scope')).toBe('openid profile email offline_access');
      const { finalUrl } = await loginThroughGateway(plain.gw.url);
      expect(finalUrl).toBe(`${plain.gw.url}/`);
    } finally {
      await plain.close();
    }
  });

  test('the session id is regenerated at login: a planted session cookie is not the one that ends up logged in', async () => {
    const { jar, cookie: first } = await loggedIn();
    const callback = await loginUntilCallback(jar);
    const res = await request(stack.gw.url)
      .get(callback.pathname + callback.search)
      .set('Cookie', `${first}; ${TX_COOKIE}=${jar.get(stack.gw.url, TX_COOKIE)}`);
    expect(res.status).toBe(302);
    const second = (setCookie(res.headers, COOKIE) as string).split(';')[0] as string;
    expect(second).not.toBe(first);
    // The old session is gone, the new one works.
    expect((await request(stack.gw.url).get('/auth/user').set('Cookie', first)).status).toBe(401);
    await expectStillLoggedIn(second);
  });

  test('hostile returnTo values fall back to /', async () => {
    for (const returnTo of ['//evil.example', '/\\evil.example', 'https://evil.example/', 'javascript:alert(1)', '/%2F%2Fevil.example']) {
      const { finalUrl } = await loginThroughGateway(stack.gw.url, undefined, { returnTo });
      expect(finalUrl).toBe(`${stack.gw.url}/`);
    }
  });
});

describe('a bad callback gets a 400 page, creates no session and leaves an existing one untouched', () => {
  /** Sends the callback with the given query and cookies; asserts the 400 page and that sessions are unchanged. */
  async function expectRefused(path: string, cookie: string, code: string): Promise<void> {
    const keysBefore = await sessionKeys();
    const res = await request(stack.gw.url).get(path).set('Cookie', cookie);
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.text).toContain('Sign-in failed');
    expect(res.text).toContain(code);
    expect(res.text).not.toMatch(/at .*\.ts:\d+/);
    expect(setCookie(res.headers, COOKIE)).toBeUndefined();
    expect(await sessionKeys()).toEqual(keysBefore);
  }

  test('no transaction cookie (missing state binding)', async () => {
    const { cookie } = await loggedIn();
    const callback = await loginUntilCallback(new CookieJar());
    await expectRefused(callback.pathname + callback.search, cookie, 'login_transaction_missing');
    await expectStillLoggedIn(cookie);
  });

  test('missing state parameter', async () => {
    const { jar, cookie } = await loggedIn();
    const callback = await loginUntilCallback(jar);
    callback.searchParams.delete('state');
    await expectRefused(callback.pathname + callback.search, `${cookie}; ${TX_COOKIE}=${jar.get(stack.gw.url, TX_COOKIE)}`, 'state_mismatch');
    await expectStillLoggedIn(cookie);
  });

  test("a state that is not this browser's", async () => {
    const { jar, cookie } = await loggedIn();
    const callback = await loginUntilCallback(jar);
    callback.searchParams.set('state', 'forged-state');
    await expectRefused(callback.pathname + callback.search, `${cookie}; ${TX_COOKIE}=${jar.get(stack.gw.url, TX_COOKIE)}`, 'state_mismatch');
    await expectStillLoggedIn(cookie);
  });

  test('an unknown transaction cookie', async () => {
    const { jar, cookie } = await loggedIn();
    const callback = await loginUntilCallback(jar);
    const forged = 'AAAAAAAAAAAAAAAAAAAAAA.' + 'B'.repeat(43);
    await expectRefused(callback.pathname + callback.search, `${cookie}; ${TX_COOKIE}=${forged}`, 'login_transaction_unknown');
    await expectStillLoggedIn(cookie);
  });

  test('a reused state (the callback replayed with its transaction cookie)', async () => {
    const jar = new CookieJar();
    const callback = await loginUntilCallback(jar);
    const tx = `${TX_COOKIE}=${jar.get(stack.gw.url, TX_COOKIE)}`;
    const first = await request(stack.gw.url)
      .get(callback.pathname + callback.search)
      .set('Cookie', tx);
    expect(first.status).toBe(302);
    const cookie = (setCookie(first.headers, COOKIE) as string).split(';')[0] as string;
    await expectRefused(callback.pathname + callback.search, `${cookie}; ${tx}`, 'login_transaction_unknown');
    await expectStillLoggedIn(cookie);
  });

  test("a wrong PKCE verifier (another login's code presented with this browser's state)", async () => {
    const { jar, cookie } = await loggedIn();
    const mine = await loginUntilCallback(jar);
    const theirs = await loginUntilCallback(new CookieJar());
    mine.searchParams.set('code', theirs.searchParams.get('code') as string);
    await expectRefused(mine.pathname + mine.search, `${cookie}; ${TX_COOKIE}=${jar.get(stack.gw.url, TX_COOKIE)}`, 'code_exchange_failed');
    await expectStillLoggedIn(cookie);
  });

  test('a replayed authorization code', async () => {
    const jar = new CookieJar();
    const used = await loginUntilCallback(jar);
    const first = await request(stack.gw.url)
      .get(used.pathname + used.search)
      .set('Cookie', `${TX_COOKIE}=${jar.get(stack.gw.url, TX_COOKIE)}`);
    expect(first.status).toBe(302);
    const cookie = (setCookie(first.headers, COOKIE) as string).split(';')[0] as string;
    const fresh = await loginUntilCallback(jar);
    fresh.searchParams.set('code', used.searchParams.get('code') as string);
    await expectRefused(fresh.pathname + fresh.search, `${cookie}; ${TX_COOKIE}=${jar.get(stack.gw.url, TX_COOKIE)}`, 'code_exchange_failed');
    await expectStillLoggedIn(cookie);
  });

  test('an IdP error response', async () => {
    const { jar, cookie } = await loggedIn();
    const callback = await loginUntilCallback(jar);
    const path = `/auth/callback?error=access_denied&state=${callback.searchParams.get('state')}&iss=${encodeURIComponent(stack.idp.issuer)}`;
    await expectRefused(path, `${cookie}; ${TX_COOKIE}=${jar.get(stack.gw.url, TX_COOKIE)}`, 'idp_error');
    await expectStillLoggedIn(cookie);
  });

  test('a missing or wrong iss (RFC 9207 mix-up defence)', async () => {
    const { jar, cookie } = await loggedIn();
    const missing = await loginUntilCallback(jar);
    missing.searchParams.delete('iss');
    await expectRefused(missing.pathname + missing.search, `${cookie}; ${TX_COOKIE}=${jar.get(stack.gw.url, TX_COOKIE)}`, 'response_invalid');
    const wrong = await loginUntilCallback(jar);
    wrong.searchParams.set('iss', 'https://attacker.example');
    await expectRefused(wrong.pathname + wrong.search, `${cookie}; ${TX_COOKIE}=${jar.get(stack.gw.url, TX_COOKIE)}`, 'response_invalid');
    await expectStillLoggedIn(cookie);
  });

  test('the transaction cookie is deleted by a failed callback too', async () => {
    const jar = new CookieJar();
    const callback = await loginUntilCallback(jar);
    callback.searchParams.set('state', 'forged-state');
    const res = await request(stack.gw.url)
      .get(callback.pathname + callback.search)
      .set('Cookie', `${TX_COOKIE}=${jar.get(stack.gw.url, TX_COOKIE)}`);
    expect(res.status).toBe(400);
    expect(setCookie(res.headers, TX_COOKIE)).toMatch(/Expires=Thu, 01 Jan 1970/);
  });
});

describe('the IdP refusing to start a login', () => {
  test('a pushed authorization request the IdP rejects is 502 problem+json with a logged reason, and no transaction is kept', async () => {
    // A gateway whose redirect URI the IdP does not know: the IdP refuses its pushed authorization requests.
    const stranger = await startTestGateway({ url: await reserveGatewayUrl(), issuer: stack.idp.issuer });
    try {
      const res = await request(stranger.url).get('/auth/login');
      expect(res.status).toBe(502);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(JSON.parse(res.text).code).toBe('idp_refused_login');
      expect(setCookie(res.headers, TX_COOKIE)).toBeUndefined();
      expect(stranger.logs.join('')).toContain('login could not be started at the OpenID provider');
    } finally {
      await stranger.close();
    }
  });
});

describe('BFF_ERROR_URL', () => {
  test('a failed callback redirects there with the error code instead of the 400 page', async () => {
    const withErrorUrl = await startStack({ env: { BFF_ERROR_URL: '/login-error' } });
    try {
      const res = await request(withErrorUrl.gw.url).get('/auth/callback?code=x&state=y');
      expect(res.status).toBe(302);
      expect(res.headers.location).toBe('/login-error?error=login_transaction_missing');
    } finally {
      await withErrorUrl.close();
    }
  });
});
