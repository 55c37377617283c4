import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import request from 'supertest';
import { WebSocket } from 'ws';
import { CookieJar, followRedirects, loginThroughGateway } from '../support/browser-flow.ts';
import { startEcho, type EchoServer } from '../support/echo.ts';
import { reserveGatewayUrl, startTestGateway, type TestGateway } from '../support/gateway.ts';
import { startIdp, type TestIdp } from '../support/idp.ts';
import { upgradeOutcome, startWsEcho, type WsEcho } from '../support/websocket.ts';

const LOA1 = 'urn:test:loa:1';
const LOA2 = 'urn:test:loa:2';
const UPSTREAM_BODY = 'the upstream body, which the SPA must not see';

let idp: TestIdp;
let echo: EchoServer;
let wsEcho: WsEcho;
/** Answers 401 with the WWW-Authenticate header named by its `challenge` query parameter. */
let challenger: Server;
let challengerRequests = 0;
/** On the public URL the IdP knows. */
let gwA: TestGateway;
/** Another instance behind the same public URL, sharing the Redis: a session made on A is judged alike on B. */
let gwB: TestGateway;
let publicUrl: string;

beforeAll(async () => {
  publicUrl = await reserveGatewayUrl();
  idp = await startIdp({
    redirectUris: [`${publicUrl}/auth/callback`],
    postLogoutRedirectUris: [`${publicUrl}/`],
    acrValues: [LOA1, LOA2],
    accountClaims: {
      alice: { groups: ['staff', 'ops'], level: 3, staff: true, department: 'eng' },
      // `staff` as a string: a rule on the boolean must not accept it.
      bob: { groups: ['sales'], staff: 'true', department: 'sales' },
    },
  });
  echo = await startEcho();
  wsEcho = await startWsEcho();
  challenger = createServer((req, res) => {
    challengerRequests++;
    const challenge = new URL(req.url ?? '/', 'http://x').searchParams.get('challenge') ?? '';
    res.writeHead(401, { 'www-authenticate': challenge, 'content-type': 'text/plain' }).end(UPSTREAM_BODY);
  });
  await new Promise<void>((resolve) => challenger.listen(0, '127.0.0.1', resolve));
  const challengerUrl = `http://127.0.0.1:${(challenger.address() as AddressInfo).port}`;
  const routes = [
    { prefix: '/api/ops', target: echo.url, token: 'user', require: { claims: { groups: ['ops', 'admin'] } } },
    { prefix: '/api/department', target: echo.url, token: 'user', require: { claims: { department: 'eng' } } },
    { prefix: '/api/level', target: echo.url, token: 'user', require: { claims: { level: 3 } } },
    { prefix: '/api/staff', target: echo.url, token: 'user', require: { claims: { staff: true } } },
    { prefix: '/api/loa2', target: echo.url, token: 'user', require: { acr: [LOA2] } },
    { prefix: '/api/strong', target: echo.url, token: 'user', stepUp: { acr: LOA2 } },
    { prefix: '/api/fresh', target: echo.url, token: 'user', stepUp: { maxAge: 300 } },
    { prefix: '/api/ws-admin', target: wsEcho.url, token: 'user', websocket: true, require: { claims: { groups: ['admin'] } } },
    { prefix: '/api/ws-ops', target: wsEcho.url, token: 'user', websocket: true, require: { claims: { groups: ['ops'] } } },
    { prefix: '/api/challenge', target: challengerUrl, token: 'user' },
  ];
  gwA = await startTestGateway({ url: publicUrl, issuer: idp.issuer, routes });
  gwB = await startTestGateway({ url: publicUrl, issuer: idp.issuer, routes, env: { BFF_PORT: '0' } });
});
afterAll(async () => {
  await gwB?.close();
  await gwA?.close();
  await wsEcho?.close();
  await echo?.close();
  challenger?.closeAllConnections();
  await new Promise<void>((resolve) => (challenger ? challenger.close(() => resolve()) : resolve()));
  await idp?.close();
});
beforeEach(() => {
  idp.nextAccount = 'alice';
  idp.nextAcr = undefined;
  idp.nextLoginAgeSec = 0;
  idp.cancelNext = false;
});

/** A login in a browser of its own (so the IdP starts a new session). */
async function login(account = 'alice'): Promise<{ jar: CookieJar; cookie: string }> {
  idp.nextAccount = account;
  const { jar, cookieHeader } = await loginThroughGateway(publicUrl);
  return { jar, cookie: cookieHeader };
}

const api = (gw: TestGateway, path: string, cookie: string) => request(gw.gateway.url).get(path).set('x-csrf', '1').set('Cookie', cookie);
const user = async (cookie: string) => (await request(gwA.gateway.url).get('/auth/user').set('Cookie', cookie)).body as Record<string, unknown>;

/** Follows a step_up_required loginUrl in the browser that holds the session, until the gateway sends it to a page of its own. */
function stepUp(jar: CookieJar, loginUrl: string) {
  return followRedirects(jar, new URL(loginUrl, publicUrl).href, { stopAt: (url) => url.origin === publicUrl && !url.pathname.startsWith('/auth/') });
}

describe('require: claims and acr rules, judged on every instance before the upstream is called', () => {
  let alice: string;
  let bob: string;
  beforeAll(async () => {
    alice = (await login('alice')).cookie;
    bob = (await login('bob')).cookie;
  });

  test.each([
    ['a list rule shared by an array claim', '/api/ops/x', 'alice', 200],
    ['a list rule an array claim shares nothing with', '/api/ops/x', 'bob', 403],
    ['a string equal', '/api/department', 'alice', 200],
    ['a string not equal', '/api/department', 'bob', 403],
    ['a number equal', '/api/level', 'alice', 200],
    ['a number missing', '/api/level', 'bob', 403],
    ['a boolean equal', '/api/staff', 'alice', 200],
    ['a boolean sent as a string', '/api/staff', 'bob', 403],
    ['an acr the login did not have', '/api/loa2', 'alice', 403],
  ])('%s: %s as %s → %i', async (_name, path, who, status) => {
    for (const gw of [gwA, gwB]) {
      const before = echo.requests.length;
      const res = await api(gw, path, who === 'alice' ? alice : bob);
      expect(res.status).toBe(status);
      if (status === 200) {
        expect(echo.requests.length).toBe(before + 1);
        continue;
      }
      expect(echo.requests.length).toBe(before);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({ status: 403, code: 'forbidden' });
      // No claim value, and not even the claim's name: what the user lacks is not the caller's to learn.
      const text = JSON.stringify(res.body);
      for (const secret of ['sales', 'ops', 'admin', 'eng', 'groups', 'department', 'staff', 'level', LOA1, LOA2]) expect(text.replace(/\/api\/\w+/, '')).not.toContain(secret);
    }
  });

  test('a refusal is logged at info with the route and the rule, never a claim value', () => {
    const lines = gwA.logs
      .join('')
      .split('\n')
      .filter((line) => line.includes('route refused'));
    expect(lines.length).toBeGreaterThan(0);
    const ops = lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line.route === '/api/ops');
    expect(ops).toMatchObject({ level: 30, route: '/api/ops', rule: 'claims', claim: 'groups' });
    for (const line of lines) expect(line).not.toMatch(/sales|"eng"|urn:test/);
  });

  test('a WebSocket route refuses before the upstream handshake; one whose rule holds opens', async () => {
    const before = wsEcho.handshakes.length;
    for (const gw of [gwA, gwB]) {
      const refused = new WebSocket(`${gw.gateway.url.replace('http', 'ws')}/api/ws-admin/chat`, { headers: { Cookie: alice, Origin: publicUrl } });
      expect(await upgradeOutcome(refused)).toBe(403);
      refused.terminate();
    }
    expect(wsEcho.handshakes.length).toBe(before);
    const allowed = new WebSocket(`${gwB.gateway.url.replace('http', 'ws')}/api/ws-ops/chat`, { headers: { Cookie: alice, Origin: publicUrl } });
    expect(await upgradeOutcome(allowed)).toBe(101);
    allowed.terminate();
    expect(wsEcho.handshakes.length).toBe(before + 1);
  });
});

describe('stepUp', () => {
  test('a route needing another acr answers step_up_required; its loginUrl steps up, comes back, and the route then works on the other instance', async () => {
    const { jar, cookie } = await login();
    expect(await user(cookie)).toMatchObject({ acr: LOA1, authTime: expect.any(Number) });
    const before = echo.requests.length;
    const refused = await api(gwA, '/api/strong/x', cookie).set('Referer', `${publicUrl}/orders/7?tab=items`);
    expect(refused.status).toBe(401);
    expect(echo.requests.length).toBe(before);
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(refused.headers['www-authenticate']).toBe('Bearer error="insufficient_user_authentication"');
    expect(refused.body).toMatchObject({ status: 401, code: 'step_up_required', loginUrl: `/auth/login?acr_values=${encodeURIComponent(LOA2)}&returnTo=%2Forders%2F7%3Ftab%3Ditems` });
    // A Referer from elsewhere is no returnTo.
    const foreign = await api(gwB, '/api/strong/x', cookie).set('Referer', 'http://evil.test/phish');
    expect(foreign.body.loginUrl).toBe(`/auth/login?acr_values=${encodeURIComponent(LOA2)}&returnTo=%2F`);

    const seen = idp.authorizationRequests.length;
    const result = await stepUp(jar, refused.body.loginUrl as string);
    expect(result.location).toBe(`${publicUrl}/orders/7?tab=items`);
    expect(idp.authorizationRequests.slice(seen)).toEqual([expect.objectContaining({ acr_values: LOA2 })]);
    const upgraded = jar.cookieHeader(publicUrl);
    expect(upgraded).not.toBe(cookie);
    expect(await user(upgraded)).toMatchObject({ sub: 'alice', acr: LOA2, authTime: expect.any(Number) });
    expect((await api(gwB, '/api/strong/x', upgraded)).status).toBe(200);
    expect((await api(gwA, '/api/loa2', upgraded)).status).toBe(200);
  });

  test('maxAge: an old login needs a step-up; an ID token whose auth_time is still too old is refused and the old session kept', async () => {
    idp.nextLoginAgeSec = 3600;
    const { jar, cookie } = await login();
    const authTime = (await user(cookie)).authTime as number;
    expect(Math.floor(Date.now() / 1000) - authTime).toBeGreaterThanOrEqual(3600);
    const refused = await api(gwB, '/api/fresh', cookie);
    expect(refused.status).toBe(401);
    expect(refused.body.loginUrl).toBe('/auth/login?max_age=300&returnTo=%2F');

    // The IdP "logs in" again but says the login is an hour old: the gateway asked for max_age=300 and refuses it.
    const seen = idp.authorizationRequests.length;
    const failed = await stepUp(jar, refused.body.loginUrl as string);
    expect(idp.authorizationRequests.slice(seen)).toEqual([expect.objectContaining({ max_age: '300' })]);
    expect(failed.status).toBe(400);
    expect(failed.body).toContain('step_up_not_satisfied');
    expect(jar.cookieHeader(publicUrl)).toBe(cookie);
    expect(await user(cookie)).toMatchObject({ sub: 'alice', authTime });
    expect((await api(gwA, '/api/ops', cookie)).status).toBe(200);

    idp.nextLoginAgeSec = 0;
    const succeeded = await stepUp(jar, refused.body.loginUrl as string);
    expect(succeeded.location).toBe(`${publicUrl}/`);
    expect((await api(gwA, '/api/fresh', jar.cookieHeader(publicUrl))).status).toBe(200);
  });

  test('an ID token with another acr than asked is refused (error page), and the old session is kept untouched', async () => {
    const { jar, cookie } = await login();
    const before = await user(cookie);
    idp.nextAcr = LOA1;
    const loginUrl = (await api(gwA, '/api/strong', cookie)).body.loginUrl as string;
    const failed = await stepUp(jar, loginUrl);
    expect(failed.status).toBe(400);
    expect(failed.body).toMatch(/^<!doctype html>/);
    expect(failed.body).toContain('step_up_not_satisfied');
    expect(jar.cookieHeader(publicUrl)).toBe(cookie);
    expect(await user(cookie)).toEqual(before);
    expect((await api(gwB, '/api/strong', cookie)).status).toBe(401);
    expect(gwA.logs.join('')).toContain('"fault":"acr_mismatch"');
  });

  test('a step-up cancelled at the IdP goes back to the page, with the old session as it was', async () => {
    const { jar, cookie } = await login();
    const before = await user(cookie);
    const loginUrl = (await api(gwA, '/api/strong', cookie).set('Referer', `${publicUrl}/orders`)).body.loginUrl as string;
    idp.cancelNext = true;
    const cancelled = await stepUp(jar, loginUrl);
    expect(cancelled.location).toBe(`${publicUrl}/orders`);
    expect(jar.cookieHeader(publicUrl)).toBe(cookie);
    expect(await user(cookie)).toEqual(before);
    expect((await api(gwB, '/api/ops', cookie)).status).toBe(200);
    expect((await api(gwB, '/api/strong', cookie)).body.code).toBe('step_up_required');
  });
});

describe('/auth/login takes only the step-up parameters that routes declare', () => {
  test.each([
    ['acr_values', `acr_values=urn%3Atest%3Aloa%3A9`],
    ['acr_values', `acr_values=${encodeURIComponent(`${LOA2} ${LOA1}`)}`],
    ['acr_values', `acr_values=${encodeURIComponent(LOA2)}&acr_values=${encodeURIComponent(LOA2)}`],
    ['max_age', 'max_age=301'],
    ['max_age', `acr_values=${encodeURIComponent(LOA2)}&max_age=0`],
  ])('%s in %s → 400 step_up_not_declared, HTML for a navigation, problem+json otherwise; nothing started', async (parameter, query) => {
    const pars = idp.counts.par;
    const page = await request(gwA.gateway.url).get(`/auth/login?${query}`).set('Accept', 'text/html,*/*;q=0.8');
    expect(page.status).toBe(400);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.text).toContain('step_up_not_declared');
    expect(page.headers['set-cookie']).toBeUndefined();
    const api = await request(gwB.gateway.url).get(`/auth/login?${query}`);
    expect(api.status).toBe(400);
    expect(api.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(api.body).toMatchObject({ code: 'step_up_not_declared' });
    expect(api.body.detail).toContain(parameter);
    expect(api.headers['set-cookie']).toBeUndefined();
    expect(idp.counts.par).toBe(pars);
  });

  test('declared values are passed to the IdP (through PAR)', async () => {
    const seen = idp.authorizationRequests.length;
    const jar = new CookieJar();
    const res = await followRedirects(jar, `${publicUrl}/auth/login?acr_values=${encodeURIComponent(LOA2)}&max_age=300`, {
      stopAt: (url) => url.origin === publicUrl && !url.pathname.startsWith('/auth/'),
    });
    expect(res.location).toBe(`${publicUrl}/`);
    expect(idp.authorizationRequests.slice(seen).at(-1)).toMatchObject({ acr_values: LOA2, max_age: '300' });
  });
});

describe("an upstream's RFC 9470 challenge", () => {
  let cookie: string;
  beforeAll(async () => {
    cookie = (await login()).cookie;
  });
  const challenge = (header: string) => `/api/challenge?challenge=${encodeURIComponent(header)}`;

  test('declared values become step_up_required with a loginUrl built from them; the upstream body stays behind', async () => {
    const before = challengerRequests;
    const res = await api(gwB, challenge(`Basic realm="x", Bearer error="insufficient_user_authentication", acr_values="urn:other ${LOA2}", max_age=300`), cookie).set(
      'Referer',
      `${publicUrl}/reports`,
    );
    expect(challengerRequests).toBe(before + 1);
    expect(res.status).toBe(401);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ code: 'step_up_required', loginUrl: `/auth/login?acr_values=${encodeURIComponent(LOA2)}&max_age=300&returnTo=%2Freports` });
    expect(JSON.stringify(res.body)).not.toContain(UPSTREAM_BODY);
  });

  test('undeclared values become 403 forbidden and a warning that tells the operator to declare them', async () => {
    const res = await api(gwA, challenge('Bearer error="insufficient_user_authentication", acr_values="urn:test:loa:9"'), cookie);
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ code: 'forbidden' });
    expect(res.text).not.toContain(UPSTREAM_BODY);
    const warning = gwA.logs.find((line) => line.includes("no route's stepUp declares"));
    expect(warning).toBeDefined();
    expect(JSON.parse(warning as string)).toMatchObject({ level: 40, route: '/api/challenge', acrValues: 'urn:test:loa:9' });
  });

  test('any other 401 passes through as the upstream sent it', async () => {
    const res = await api(gwA, challenge('Bearer error="invalid_token", error_description="a, error=insufficient_user_authentication"'), cookie);
    expect(res.status).toBe(401);
    expect(res.text).toBe(UPSTREAM_BODY);
    expect(res.headers['www-authenticate']).toContain('invalid_token');
  });
});
