import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { setTimeout as delay } from 'node:timers/promises';
import request from 'supertest';
import { CookieJar, loginThroughGateway } from '../support/browser-flow.ts';
import { startEcho, type EchoServer } from '../support/echo.ts';
import { reserveGatewayUrl, startTestGateway, type TestGateway } from '../support/gateway.ts';
import { startIdp, type TestIdp } from '../support/idp.ts';
import { scrape, type Scrape } from '../support/metrics.ts';

const ACCESS_TOKEN_TTL_SEC = 2;
/** The IdP holds every token request this long, so that concurrent API calls provably meet one refresh in flight. */
const TOKEN_ENDPOINT_DELAY_MS = 300;
const CONCURRENT_AFTER_EXPIRY = 5;

let idp: TestIdp;
let echo: EchoServer;
let gw: TestGateway;
let metrics: Scrape;

/**
 * A scripted session, then one scrape: every counter must be exactly what
 * the script did, no more (double counting) and no less (a missing hook).
 */
beforeAll(async () => {
  const url = await reserveGatewayUrl();
  idp = await startIdp({
    redirectUris: [`${url}/auth/callback`],
    postLogoutRedirectUris: [`${url}/`],
    backchannelLogoutUri: `${url}/auth/backchannel-logout`,
    accessTokenTtl: ACCESS_TOKEN_TTL_SEC,
    tokenEndpointDelayMs: TOKEN_ENDPOINT_DELAY_MS,
  });
  echo = await startEcho();
  gw = await startTestGateway({ url, issuer: idp.issuer, routes: [{ prefix: '/api/echo', target: echo.url, token: 'user' }], env: { BFF_REFRESH_SKEW: '0' } });
  const base = gw.gateway.url;
  const api = (cookie: string, path = '/api/echo/x') => request(base).get(path).set('Cookie', cookie).set('x-csrf', '1');

  // A callback nobody started: one failed login.
  expect((await request(base).get('/auth/callback?code=c&state=s')).status).toBe(400);

  // Session 1: login, who-am-I, two API calls, expiry, five concurrent calls sharing one refresh, two refused calls, logout.
  const first = await loginThroughGateway(gw.url);
  expect((await request(base).get('/auth/user').set('Cookie', first.cookieHeader)).status).toBe(200);
  for (let i = 0; i < 2; i++) expect((await api(first.cookieHeader)).status).toBe(200);
  await delay(ACCESS_TOKEN_TTL_SEC * 1000 + 200);
  const concurrent = await Promise.all(Array.from({ length: CONCURRENT_AFTER_EXPIRY }, () => api(first.cookieHeader)));
  expect(concurrent.map((r) => r.status)).toEqual(Array(CONCURRENT_AFTER_EXPIRY).fill(200));
  expect((await api(first.cookieHeader, '/api/nothing-here')).status).toBe(404);
  expect((await request(base).get('/api/echo/x').set('Cookie', first.cookieHeader)).status).toBe(403);
  expect((await request(base).post('/auth/logout').set('Cookie', first.cookieHeader).set('x-csrf', '1')).status).toBe(200);

  // Session 2: ended by the IdP over the back channel.
  const second = await loginThroughGateway(gw.url, new CookieJar());
  const user = await request(base).get('/auth/user').set('Cookie', second.cookieHeader);
  await idp.sendBackchannelLogout(user.body.sub as string, user.body.claims.sid as string);
  expect((await request(base).get('/auth/user').set('Cookie', second.cookieHeader)).status).toBe(401);

  metrics = await scrape(gw.gateway.adminUrl);
}, 30_000);

afterAll(async () => {
  await gw?.close();
  await echo?.close();
  await idp?.close();
});

test('logins: started, completed and failed by reason', () => {
  expect(metrics.value('bff_logins_started_total')).toBe(2);
  expect(metrics.value('bff_logins_completed_total')).toBe(2);
  expect(metrics.value('bff_logins_failed_total', { reason: 'login_transaction_missing' })).toBe(1);
  const otherFailures = metrics.series('bff_logins_failed_total').filter((s) => s.labels.reason !== 'login_transaction_missing');
  expect(otherFailures.length).toBeGreaterThanOrEqual(7);
  expect(otherFailures.every((s) => s.value === 0)).toBe(true);
});

test('refreshes: one grant for five concurrent requests, four saved by single-flight', () => {
  expect(idp.counts.refreshToken).toBe(1);
  expect(metrics.value('bff_token_refreshes_total', { outcome: 'success' })).toBe(1);
  expect(metrics.value('bff_token_refreshes_total', { outcome: 'refused' })).toBe(0);
  expect(metrics.value('bff_token_refreshes_total', { outcome: 'error' })).toBe(0);
  expect(metrics.value('bff_token_refreshes_saved_total')).toBe(CONCURRENT_AFTER_EXPIRY - 1);
});

test('back-channel logouts and the sessions they ended', () => {
  expect(metrics.value('bff_backchannel_logouts_total')).toBe(1);
  expect(metrics.value('bff_backchannel_logout_sessions_total')).toBe(1);
});

test('HTTP requests by route and status class', () => {
  const requests = (route: string, statusClass: string) => metrics.value('bff_http_requests_total', { route, status_class: statusClass });
  expect(requests('/api/echo', '2xx')).toBe(2 + CONCURRENT_AFTER_EXPIRY);
  expect(requests('/api/echo', '4xx')).toBe(1);
  expect(requests('/api', '4xx')).toBe(1);
  expect(requests('/auth/login', '3xx')).toBe(2);
  expect(requests('/auth/callback', '3xx')).toBe(2);
  expect(requests('/auth/callback', '4xx')).toBe(1);
  expect(requests('/auth/user', '2xx')).toBe(2);
  expect(requests('/auth/user', '4xx')).toBe(1);
  expect(requests('/auth/logout', '2xx')).toBe(1);
  expect(requests('/auth/backchannel-logout', '2xx')).toBe(1);
  const total = metrics.series('bff_http_requests_total').reduce((sum, s) => sum + s.value, 0);
  expect(total).toBe(2 + CONCURRENT_AFTER_EXPIRY + 1 + 1 + 2 + 2 + 1 + 2 + 1 + 1 + 1);
});

test('request and upstream duration histograms count the same requests', () => {
  expect(metrics.value('bff_http_request_duration_seconds_count', { route: '/api/echo' })).toBe(2 + CONCURRENT_AFTER_EXPIRY + 1);
  // Only the requests that reached the upstream: not the one refused for its missing CSRF header.
  expect(metrics.value('bff_upstream_duration_seconds_count', { route: '/api/echo' })).toBe(2 + CONCURRENT_AFTER_EXPIRY);
  expect(metrics.value('bff_upstream_duration_seconds_count', { route: '/api' })).toBeUndefined();
  expect(echo.requests.length).toBe(2 + CONCURRENT_AFTER_EXPIRY);
});

test('IdP requests by endpoint', () => {
  const idpRequests = (endpoint: string) => metrics.value('bff_idp_request_duration_seconds_count', { endpoint });
  expect(idpRequests('discovery')).toBe(1);
  expect(idpRequests('par')).toBe(2);
  // Two code exchanges and one refresh.
  expect(idpRequests('token')).toBe(3);
  expect(idpRequests('userinfo')).toBe(2);
  expect(idpRequests('revocation')).toBe(1);
  expect(idpRequests('other')).toBeUndefined();
  expect(metrics.series('bff_idp_request_errors_total').every((s) => s.value === 0)).toBe(true);
  // The token endpoint's 300 ms hold shows in its latency.
  expect(metrics.value('bff_idp_request_duration_seconds_sum', { endpoint: 'token' })).toBeGreaterThanOrEqual((3 * TOKEN_ENDPOINT_DELAY_MS) / 1000);
});

test('Redis commands timed, none failed', () => {
  const commands = metrics.series('bff_redis_command_duration_seconds_count');
  expect(commands.find((s) => s.labels.command === 'GET')?.value).toBeGreaterThan(0);
  expect(commands.find((s) => s.labels.command === 'PING')).toBeUndefined();
  expect(metrics.series('bff_redis_command_errors_total').every((s) => s.value === 0)).toBe(true);
});

test('no WebSocket open; Node process metrics present', () => {
  expect(metrics.value('bff_websockets_active')).toBe(0);
  expect(metrics.value('process_cpu_user_seconds_total')).toBeGreaterThan(0);
  expect(metrics.value('nodejs_eventloop_lag_seconds')).toBeDefined();
});

test('the registry is per gateway: a second gateway in this process starts from zero', async () => {
  const other = await startTestGateway({ url: await reserveGatewayUrl(), issuer: idp.issuer });
  try {
    const fresh = await scrape(other.gateway.adminUrl);
    expect(fresh.value('bff_logins_started_total')).toBe(0);
    expect(fresh.series('bff_http_requests_total')).toEqual([]);
    // Nor did the first one count the second one's Redis commands (one diagnostics channel, two clients).
    const again = await scrape(gw.gateway.adminUrl);
    expect(again.value('bff_redis_command_duration_seconds_count', { command: 'GET' })).toBe(metrics.value('bff_redis_command_duration_seconds_count', { command: 'GET' }));
  } finally {
    await other.close();
  }
});
