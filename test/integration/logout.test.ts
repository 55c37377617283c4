import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import request from 'supertest';
import { CookieJar, followRedirects, loginThroughGateway } from '../support/browser-flow.ts';
import { rawRedis, setCookie, startStack, type Stack } from '../support/stack.ts';

let stack: Stack;
let redis: Awaited<ReturnType<typeof rawRedis>>;

beforeAll(async () => {
  stack = await startStack();
  redis = await rawRedis();
});
afterAll(async () => {
  await redis?.close();
  await stack?.close();
});

async function login(): Promise<{ cookie: string; logoutUrl: string; tokens: Record<string, string>; storeKey: string }> {
  const { cookieHeader, jar } = await loginThroughGateway(stack.gw.url);
  const tokens = stack.tokenResponses.at(-1) as Record<string, string>;
  const user = await request(stack.gw.url).get('/auth/user').set('Cookie', cookieHeader);
  const storeId = /^s:([^.]+)\./.exec(decodeURIComponent(jar.get(stack.gw.url, 'bff') as string))?.[1];
  return { cookie: cookieHeader, logoutUrl: user.body.logoutUrl as string, tokens, storeKey: `bff:sess:{${storeId}}` };
}

async function expectEnded(session: { cookie: string; storeKey: string; tokens: Record<string, string> }): Promise<void> {
  expect((await request(stack.gw.url).get('/auth/user').set('Cookie', session.cookie)).status).toBe(401);
  expect((await request(stack.gw.url).get('/api/echo/x').set('Cookie', session.cookie).set('x-csrf', '1')).status).toBe(401);
  expect(await redis.exists(session.storeKey)).toBe(0);
  expect((await stack.idp.introspect(session.tokens.refresh_token as string)).active).toBe(false);
}

async function expectAlive(cookie: string): Promise<void> {
  expect((await request(stack.gw.url).get('/auth/user').set('Cookie', cookie)).status).toBe(200);
}

describe('GET /auth/logout?sid=…', () => {
  test('revokes the refresh token, deletes the session and the cookie, and sends the browser to the IdP end-session endpoint', async () => {
    const session = await login();
    expect((await stack.idp.introspect(session.tokens.refresh_token as string)).active).toBe(true);
    const res = await request(stack.gw.url).get(session.logoutUrl).set('Cookie', session.cookie);
    expect(res.status).toBe(302);
    expect(setCookie(res.headers, 'bff')).toMatch(/^bff=; Path=\/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Strict$/);
    const location = new URL(res.headers.location as string);
    expect(location.origin).toBe(stack.idp.issuer);
    expect(location.searchParams.get('id_token_hint')).toBe(session.tokens.id_token);
    expect(location.searchParams.get('post_logout_redirect_uri')).toBe(`${stack.gw.url}/`);
    await expectEnded(session);
    // The IdP's end-session endpoint accepts it and comes back to the post-logout URI.
    const after = await followRedirects(new CookieJar(), location.href, { stopAt: (url) => url.origin === stack.gw.url });
    expect(after.location).toBe(`${stack.gw.url}/`);
  });

  test('without the sid, or with another one, it is refused and the session survives (no cross-site logout by link)', async () => {
    const session = await login();
    for (const path of ['/auth/logout', '/auth/logout?sid=', '/auth/logout?sid=guess', `${session.logoutUrl}x`]) {
      const res = await request(stack.gw.url).get(path).set('Cookie', session.cookie);
      expect(res.status).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(JSON.parse(res.text).code).toBe('logout_sid_mismatch');
      expect(setCookie(res.headers, 'bff')).toBeUndefined();
    }
    await expectAlive(session.cookie);
  });

  test('an anonymous browser is sent to the post-logout URL', async () => {
    const res = await request(stack.gw.url).get('/auth/logout?sid=whatever');
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe(`${stack.gw.url}/`);
  });
});

describe('POST /auth/logout', () => {
  test('with the CSRF header it ends the session and answers the end-session URL', async () => {
    const session = await login();
    const res = await request(stack.gw.url).post('/auth/logout').set('Cookie', session.cookie).set('x-csrf', '1');
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const redirect = new URL(res.body.redirectUrl as string);
    expect(redirect.origin).toBe(stack.idp.issuer);
    expect(redirect.searchParams.get('id_token_hint')).toBe(session.tokens.id_token);
    expect(setCookie(res.headers, 'bff')).toMatch(/^bff=;/);
    await expectEnded(session);
  });

  test('without the CSRF header, or cross-site, it is 403 and the session survives', async () => {
    const session = await login();
    const missing = await request(stack.gw.url).post('/auth/logout').set('Cookie', session.cookie);
    expect(missing.status).toBe(403);
    expect(JSON.parse(missing.text).code).toBe('csrf_header_missing');
    const crossSite = await request(stack.gw.url).post('/auth/logout').set('Cookie', session.cookie).set('x-csrf', '1').set('Origin', 'https://evil.example');
    expect(crossSite.status).toBe(403);
    expect(JSON.parse(crossSite.text).code).toBe('cross_site_request');
    const form = await request(stack.gw.url).post('/auth/logout').set('Cookie', session.cookie).type('form').send('x-csrf=1').set('Sec-Fetch-Site', 'cross-site');
    expect(form.status).toBe(403);
    await expectAlive(session.cookie);
    expect((await stack.idp.introspect(session.tokens.refresh_token as string)).active).toBe(true);
  });

  test('an anonymous caller gets the post-logout URL', async () => {
    const res = await request(stack.gw.url).post('/auth/logout').set('x-csrf', '1');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ redirectUrl: `${stack.gw.url}/` });
  });
});
