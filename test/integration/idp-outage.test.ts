import { afterAll, beforeAll, expect, test } from '@jest/globals';
import request from 'supertest';
import { loginThroughGateway } from '../support/browser-flow.ts';
import { startEcho, type EchoServer } from '../support/echo.ts';
import { reserveGatewayUrl, startTestGateway, type TestGateway } from '../support/gateway.ts';
import { startIdp, type TestIdp } from '../support/idp.ts';

let idp: TestIdp;
let echo: EchoServer;
let gw: TestGateway;

beforeAll(async () => {
  const url = await reserveGatewayUrl();
  idp = await startIdp({ redirectUris: [`${url}/auth/callback`], postLogoutRedirectUris: [`${url}/`] });
  await idp.stop();
  echo = await startEcho();
  gw = await startTestGateway({ url, issuer: idp.issuer, routes: [{ prefix: '/api/echo', target: echo.url, token: 'user' }] });
});
afterAll(async () => {
  await gw?.close();
  await echo?.close();
  await idp?.close();
});

test('the gateway starts while the IdP is down, answers 503 on login, and recovers by itself once the IdP is back', async () => {
  const login = await request(gw.url).get('/auth/login');
  expect(login.status).toBe(503);
  expect(login.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(JSON.parse(login.text).code).toBe('idp_unavailable');
  expect(login.headers['retry-after']).toBe('5');
  const ready = await request(gw.gateway.adminUrl).get('/readyz');
  expect(ready.status).toBe(503);
  expect(ready.body.checks).toEqual({ store: true, idp: false });
  expect((await request(gw.gateway.adminUrl).get('/healthz')).status).toBe(200);

  await idp.start();
  // No traffic needed: the background retry (with backoff) loads the metadata.
  const deadline = Date.now() + 15_000;
  while ((await request(gw.gateway.adminUrl).get('/readyz')).status !== 200) {
    if (Date.now() > deadline) throw new Error('readiness did not recover after the IdP came back');
    await new Promise((r) => setTimeout(r, 200));
  }
  const { cookieHeader } = await loginThroughGateway(gw.url);
  expect((await request(gw.url).get('/api/echo/x').set('Cookie', cookieHeader).set('x-csrf', '1')).status).toBe(200);
  expect(gw.logs.join('')).toContain('OpenID provider discovery failed; retrying');
});
