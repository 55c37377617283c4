import { afterAll, beforeAll, expect, test } from '@jest/globals';
import request from 'supertest';
import { CookieJar, followRedirects } from '../support/browser-flow.ts';
import { TEST_SESSION_SECRET } from '../support/gateway.ts';
import { TEST_CLIENT_SECRET } from '../support/idp.ts';
import { setCookie, startStack, type Stack } from '../support/stack.ts';

let stack: Stack;

beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.close();
});

test('at trace level, no log line holds a token, the code, the cookie or a secret', async () => {
  const jar = new CookieJar();
  const back = await followRedirects(jar, `${stack.gw.url}/auth/login`, { stopAt: (url) => url.pathname === '/auth/callback' });
  const callback = new URL(back.location as string);
  const code = callback.searchParams.get('code') as string;
  const txCookie = jar.get(stack.gw.url, 'bff-tx') as string;
  const done = await request(stack.gw.url).get(callback.pathname + callback.search).set('Cookie', `bff-tx=${txCookie}`);
  const cookie = (setCookie(done.headers, 'bff') as string).split(';')[0] as string;
  const tokens = stack.tokenResponses.at(-1) as Record<string, string>;

  await request(stack.gw.url).get('/auth/user').set('Cookie', cookie);
  await request(stack.gw.url).get('/api/echo/x?code=should-not-matter').set('Cookie', cookie).set('x-csrf', '1').set('Authorization', 'Bearer browser-token-value');
  await request(stack.gw.url).post('/auth/logout').set('Cookie', cookie).set('x-csrf', '1');

  const logs = stack.gw.logs.join('');
  expect(logs).toContain('login completed');
  expect(logs.length).toBeGreaterThan(1000);
  const secrets = {
    code,
    txCookie,
    cookie: cookie.split('=')[1] as string,
    cookieDecoded: decodeURIComponent(cookie.split('=')[1] as string),
    accessToken: tokens.access_token,
    refreshToken: tokens.refresh_token,
    idToken: tokens.id_token,
    clientSecret: TEST_CLIENT_SECRET,
    sessionSecret: TEST_SESSION_SECRET,
    browserToken: 'browser-token-value',
  };
  for (const [name, value] of Object.entries(secrets)) {
    expect(typeof value).toBe('string');
    if (logs.includes(value as string)) throw new Error(`the logs contain the ${name}`);
  }
});
