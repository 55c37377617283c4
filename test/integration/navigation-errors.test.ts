import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import request from 'supertest';
import { reserveGatewayUrl, startTestGateway, type TestGateway } from '../support/gateway.ts';
import { startIdp, type TestIdp } from '../support/idp.ts';

/** What Chromium sends for a top-level navigation. */
const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8';
/** What fetch() and API clients send. */
const API_ACCEPTS = ['application/json', '*/*', 'application/problem+json, text/plain;q=0.5'];
/** Limits of one request per address and minute: a second request from the same address is refused. */
const ONE_PER_MINUTE = { BFF_RATE_LIMIT_LOGIN: '1/1m', BFF_RATE_LIMIT_CALLBACK: '1/1m', BFF_TRUST_PROXY: 'loopback' };

let idpUp: TestIdp;
let idpDown: TestIdp;
/** Up while the gateways load its metadata, then down. */
let idpGone: TestIdp;
/** The IdP is down. */
let down: TestGateway;
let downWithErrorUrl: TestGateway;
/** The IdP went down after discovery: the pushed authorization request cannot connect. */
let gone: TestGateway;
let goneWithErrorUrl: TestGateway;
/** Its redirect URI is not registered: the IdP refuses its pushed authorization requests. */
let stranger: TestGateway;
let strangerWithErrorUrl: TestGateway;

beforeAll(async () => {
  idpUp = await startIdp({ redirectUris: ['http://127.0.0.1:1/auth/callback'] });
  idpDown = await startIdp({ redirectUris: ['http://127.0.0.1:1/auth/callback'] });
  await idpDown.stop();
  idpGone = await startIdp({ redirectUris: ['http://127.0.0.1:1/auth/callback'] });
  const start = async (issuer: string, env: Record<string, string>) => startTestGateway({ url: await reserveGatewayUrl(), issuer, store: 'memory', env: { ...ONE_PER_MINUTE, ...env } });
  down = await start(idpDown.issuer, {});
  downWithErrorUrl = await start(idpDown.issuer, { BFF_ERROR_URL: '/login-error' });
  gone = await start(idpGone.issuer, {});
  goneWithErrorUrl = await start(idpGone.issuer, { BFF_ERROR_URL: '/login-error' });
  await idpGone.stop();
  stranger = await start(idpUp.issuer, {});
  strangerWithErrorUrl = await start(idpUp.issuer, { BFF_ERROR_URL: 'https://status.example.com/signin?lang=en' });
});
afterAll(async () => {
  for (const gw of [down, downWithErrorUrl, gone, goneWithErrorUrl, stranger, strangerWithErrorUrl]) await gw?.close();
  await idpUp?.close();
  await idpGone?.close();
  await idpDown?.close();
});

let addresses = 0;
/** A fresh client address per case, so that each case has its own rate-limit budget. */
const nextAddress = (): string => `198.51.100.${++addresses}`;

type Case = {
  name: string;
  gateway: () => TestGateway;
  withErrorUrl: () => TestGateway;
  path: string;
  status: number;
  code: string;
  heading: string;
  /** Spends the address's budget first, so that the request under test is over the limit. */
  limited?: boolean;
};

const CASES: Case[] = [
  {
    name: 'IdP unreachable at /auth/login',
    gateway: () => down,
    withErrorUrl: () => downWithErrorUrl,
    path: '/auth/login?returnTo=/orders',
    status: 503,
    code: 'idp_unavailable',
    heading: 'Sign-in is unavailable',
  },
  { name: 'IdP gone after discovery', gateway: () => gone, withErrorUrl: () => goneWithErrorUrl, path: '/auth/login', status: 503, code: 'idp_unavailable', heading: 'Sign-in is unavailable' },
  {
    name: 'a login the IdP refuses to start',
    gateway: () => stranger,
    withErrorUrl: () => strangerWithErrorUrl,
    path: '/auth/login',
    status: 502,
    code: 'idp_refused_login',
    heading: 'Sign-in could not start',
  },
  {
    name: 'the login rate limit',
    gateway: () => down,
    withErrorUrl: () => downWithErrorUrl,
    path: '/auth/login',
    status: 429,
    code: 'rate_limited',
    heading: 'Too many sign-in attempts',
    limited: true,
  },
  {
    name: 'the callback rate limit',
    gateway: () => stranger,
    withErrorUrl: () => strangerWithErrorUrl,
    path: '/auth/callback?code=c&state=s',
    status: 429,
    code: 'rate_limited',
    heading: 'Too many sign-in attempts',
    limited: true,
  },
];

async function send(gw: TestGateway, c: Case, accept: string): Promise<request.Response> {
  const address = nextAddress();
  if (c.limited) await request(gw.url).get(c.path).set('X-Forwarded-For', address).set('Accept', accept);
  return request(gw.url).get(c.path).set('X-Forwarded-For', address).set('Accept', accept);
}

describe("a browser navigation gets the gateway's error page", () => {
  test.each(CASES)('$name: $status HTML page with the code, no-store, and a CSP that allows its style and nothing else', async (c) => {
    const res = await send(c.gateway(), c, BROWSER_ACCEPT);
    expect(res.status).toBe(c.status);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.text).toContain(`<h1>${c.heading}</h1>`);
    expect(res.text).toContain(`<code>${c.code}</code>`);
    expect(res.text).toContain('<meta name="viewport" content="width=device-width, initial-scale=1">');
    expect(res.text).not.toMatch(/"status"|"detail"|at .*\.ts:\d+/);
    // Styled, and the style is allowed by its hash: no 'unsafe-inline', no script at all.
    const style = /<style>([\s\S]*?)<\/style>/.exec(res.text)?.[1];
    expect(style).toContain('max-width');
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toContain(
      `style-src 'sha256-${createHash('sha256')
        .update(style ?? '')
        .digest('base64')}'`,
    );
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.text).not.toContain('<script');
    if (c.status === 429) {
      expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(res.text).toContain(`Try again in ${res.headers['retry-after']} second`);
    }
    if (c.status === 503) expect(res.headers['retry-after']).toBe('5');
  });

  test.each(CASES)('$name: with BFF_ERROR_URL, a redirect there with the code instead', async (c) => {
    const gw = c.withErrorUrl();
    const res = await send(gw, c, BROWSER_ACCEPT);
    expect(res.status).toBe(302);
    const expected = new URL(gw.config.errorUrl as string, 'http://relative.invalid');
    expected.searchParams.set('error', c.code);
    expect(res.headers.location).toBe(gw.config.errorUrl?.startsWith('/') ? `${expected.pathname}${expected.search}` : expected.href);
    expect(res.headers['cache-control']).toBe('no-store');
    if (c.status === 429) expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });
});

describe('an API-style caller keeps problem+json', () => {
  test.each(CASES)('$name: $status problem+json with the code, for Accept without text/html', async (c) => {
    for (const accept of API_ACCEPTS) {
      for (const gw of [c.gateway(), c.withErrorUrl()]) {
        const res = await send(gw, c, accept);
        expect([accept, res.status]).toEqual([accept, c.status]);
        expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(JSON.parse(res.text)).toMatchObject({ status: c.status, code: c.code });
        if (c.status === 429) expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      }
    }
  });
});

test("the callback's own error page is the same template as the login pages", async () => {
  // A callback without its transaction cookie: the callback's own check, not a limit.
  const callback = await request(stranger.url).get('/auth/callback?code=c&state=s').set('X-Forwarded-For', nextAddress()).set('Accept', BROWSER_ACCEPT);
  expect(callback.status).toBe(400);
  expect(callback.text).toContain('<code>login_transaction_missing</code>');
  const login = await request(down.url).get('/auth/login').set('X-Forwarded-For', nextAddress()).set('Accept', BROWSER_ACCEPT);
  const styleOf = (html: string): string | undefined => /<style>[\s\S]*?<\/style>/.exec(html)?.[0];
  expect(styleOf(callback.text)).toBeDefined();
  expect(styleOf(callback.text)).toBe(styleOf(login.text));
  expect(callback.headers['content-security-policy']).toBe(login.headers['content-security-policy']);
});
