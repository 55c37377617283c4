import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import request from 'supertest';
import { WebSocket } from 'ws';
import { CookieJar, loginThroughGateway } from '../support/browser-flow.ts';
import { startEcho, type EchoServer } from '../support/echo.ts';
import { reserveGatewayUrl, startTestGateway, type TestGateway } from '../support/gateway.ts';
import { startIdp, TEST_CLIENT_ID, TEST_CLIENT_SECRET, type TestIdp } from '../support/idp.ts';
import { rawRedis } from '../support/stack.ts';
import { startWsEcho, upgradeOutcome, type WsEcho } from '../support/websocket.ts';

/**
 * A WebSocket is authorised by a session at its handshake; it must not
 * outlive it. However the session ends — logout (POST or GET) on either
 * instance, back-channel logout received by the other instance, idle or
 * absolute timeout, a refresh the IdP refuses — every WebSocket of that
 * session, on both instances, is closed with 1008 within 2 s of the end.
 */

const POLICY_VIOLATION = 1008;
const DEADLINE_MS = 2000;
const ACCESS_TOKEN_TTL_SEC = 2;
const IDLE_SEC = 2;
const ABSOLUTE_SEC = 5;

type Closed = { code: number; reason: string; at: number };
type Tracked = { socket: WebSocket; closed: Promise<Closed> };

let idp: TestIdp;
let upstream: WsEcho;
let echo: EchoServer;
/** Two instances behind one public URL, sharing one Redis; the IdP's back-channel logouts reach A. */
let a: TestGateway;
let b: TestGateway;
/** Two more, with short idle and absolute timeouts. */
let shortA: TestGateway;
let shortB: TestGateway;
/** One instance on the memory store (no Redis), with the same short timeouts. */
let memory: TestGateway;
let redis: Awaited<ReturnType<typeof rawRedis>>;
const tokenResponses: Array<Record<string, unknown>> = [];
const opened: WebSocket[] = [];
/** Close latencies measured from each end event, printed at the end for the record. */
const latencies: string[] = [];

beforeAll(async () => {
  const [url, shortUrl, memoryUrl] = [await reserveGatewayUrl(), await reserveGatewayUrl(), await reserveGatewayUrl()];
  idp = await startIdp({
    redirectUris: [`${url}/auth/callback`, `${shortUrl}/auth/callback`, `${memoryUrl}/auth/callback`],
    postLogoutRedirectUris: [`${url}/`, `${shortUrl}/`, `${memoryUrl}/`],
    backchannelLogoutUri: `${url}/auth/backchannel-logout`,
    accessTokenTtl: ACCESS_TOKEN_TTL_SEC,
  });
  idp.provider.on('grant.success', (ctx) => {
    if (ctx.body && typeof ctx.body === 'object') tokenResponses.push({ ...(ctx.body as Record<string, unknown>) });
  });
  upstream = await startWsEcho();
  echo = await startEcho();
  const routes = [
    { prefix: '/api/ws', target: upstream.url, token: 'user', websocket: true },
    { prefix: '/api/echo', target: echo.url, token: 'user' },
  ];
  const env = { BFF_REFRESH_SKEW: '0' };
  a = await startTestGateway({ url, issuer: idp.issuer, routes, env });
  b = await startTestGateway({ url, issuer: idp.issuer, routes, env: { ...env, BFF_PORT: '0' } });
  const timeouts = { ...env, BFF_SESSION_IDLE_TIMEOUT: `${IDLE_SEC}s`, BFF_SESSION_ABSOLUTE_TIMEOUT: `${ABSOLUTE_SEC}s` };
  shortA = await startTestGateway({ url: shortUrl, issuer: idp.issuer, routes, env: timeouts });
  shortB = await startTestGateway({ url: shortUrl, issuer: idp.issuer, routes, env: { ...timeouts, BFF_PORT: '0' } });
  memory = await startTestGateway({ url: memoryUrl, issuer: idp.issuer, routes, env: timeouts, store: 'memory' });
  redis = await rawRedis();
});
afterAll(async () => {
  for (const socket of opened) socket.terminate();
  await redis?.close();
  for (const gateway of [memory, shortB, shortA, b, a]) await gateway?.close();
  await upstream?.close();
  await echo?.close();
  await idp?.close();
  if (latencies.length > 0) console.log(`WebSocket close latencies after the session ended:\n${latencies.join('\n')}`);
});

type Session = { cookie: string; storeKey: string };

async function login(gateway: TestGateway): Promise<Session> {
  const jar = new CookieJar();
  const { cookieHeader } = await loginThroughGateway(gateway.url, jar);
  const storeId = /^s:([^.]+)\./.exec(decodeURIComponent(jar.get(gateway.url, 'bff') ?? ''))?.[1];
  expect(storeId).toBeDefined();
  return { cookie: cookieHeader, storeKey: `bff:sess:{${storeId}}` };
}

/** Opens a WebSocket of the session through one instance (its own address; the Origin is the shared public URL). */
async function openSocket(gateway: TestGateway, session: Session): Promise<Tracked> {
  const socket = new WebSocket(`${gateway.gateway.url.replace('http', 'ws')}/api/ws/chat`, { headers: { Cookie: session.cookie, Origin: gateway.url } });
  opened.push(socket);
  const closed = new Promise<Closed>((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: reason.toString(), at: Date.now() })));
  expect(await upgradeOutcome(socket)).toBe(101);
  socket.send('hello');
  expect(await new Promise((resolve) => socket.once('message', (data) => resolve(data.toString())))).toBe('echo:hello');
  return { socket, closed };
}

/** The socket was closed with 1008 no later than DEADLINE_MS after `endedAt`. */
async function expectClosedBy(name: string, tracked: Tracked, endedAt: number): Promise<Closed> {
  // Unreferenced: a pending give-up timer must not hold jest open after the last test.
  const closed = await Promise.race([tracked.closed, delay(DEADLINE_MS + 1000, undefined, { ref: false })]);
  expect(closed).toBeDefined();
  const { code, reason, at } = closed as Closed;
  latencies.push(`  ${name}: ${at - endedAt} ms`);
  expect(code).toBe(POLICY_VIOLATION);
  expect(reason).toBe('session ended');
  expect(at - endedAt).toBeLessThanOrEqual(DEADLINE_MS);
  return closed as Closed;
}

/** The upstream side of each closed WebSocket is gone as well. */
async function expectUpstreamOpen(count: number): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  while (upstream.open() !== count && Date.now() < deadline) await delay(20);
  expect(upstream.open()).toBe(count);
}

const stillOpen = (tracked: Tracked): boolean => tracked.socket.readyState === WebSocket.OPEN;

describe('logout', () => {
  test("POST /auth/logout on A closes the session's WebSockets on A and on B with 1008 within 2 s; another session's stays open", async () => {
    const session = await login(a);
    const bystander = await openSocket(a, await login(a));
    const [onA, onB] = [await openSocket(a, session), await openSocket(b, session)];
    const upstreamBefore = upstream.open();
    const endedAt = Date.now();
    const logout = await request(a.gateway.url).post('/auth/logout').set('Cookie', session.cookie).set('x-csrf', '1');
    expect(logout.status).toBe(200);
    await expectClosedBy('POST logout on A, socket on A', onA, endedAt);
    await expectClosedBy('POST logout on A, socket on B', onB, endedAt);
    await expectUpstreamOpen(upstreamBefore - 2);
    expect(stillOpen(bystander)).toBe(true);
    bystander.socket.close();
  });

  test("GET /auth/logout?sid= on B closes the session's WebSockets on A and on B with 1008 within 2 s", async () => {
    const session = await login(a);
    const user = await request(b.gateway.url).get('/auth/user').set('Cookie', session.cookie);
    const logoutUrl = new URL(user.body.logoutUrl as string, a.url);
    const [onA, onB] = [await openSocket(a, session), await openSocket(b, session)];
    const endedAt = Date.now();
    const logout = await request(b.gateway.url).get(`${logoutUrl.pathname}${logoutUrl.search}`).set('Cookie', session.cookie);
    expect(logout.status).toBe(302);
    await expectClosedBy('GET logout on B, socket on A', onA, endedAt);
    await expectClosedBy('GET logout on B, socket on B', onB, endedAt);
  });
});

describe('back-channel logout', () => {
  test("a logout token received by A closes the session's WebSockets on B (and on A) with 1008 within 2 s", async () => {
    const session = await login(a);
    const user = await request(a.gateway.url).get('/auth/user').set('Cookie', session.cookie);
    const { sub } = user.body as { sub: string };
    const sid = (user.body.claims as Record<string, unknown>).sid as string;
    const [onB, onA] = [await openSocket(b, session), await openSocket(a, session)];
    const endedAt = Date.now();
    // oidc-provider signs a real logout token and POSTs it to the public URL, which is A.
    await idp.sendBackchannelLogout(sub, sid);
    await expectClosedBy('back-channel logout received by A, socket on B', onB, endedAt);
    await expectClosedBy('back-channel logout received by A, socket on A', onA, endedAt);
    expect(await redis.exists(session.storeKey)).toBe(0);
  });
});

describe('refresh refused', () => {
  test("a revoked refresh token: the refresh the IdP refuses closes the session's WebSockets on A and on B with 1008 within 2 s", async () => {
    const session = await login(a);
    const refreshToken = tokenResponses.at(-1)?.refresh_token;
    expect(typeof refreshToken).toBe('string');
    const [onA, onB] = [await openSocket(a, session), await openSocket(b, session)];
    const revoked = await fetch(`${idp.issuer}/token/revocation`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${TEST_CLIENT_ID}:${TEST_CLIENT_SECRET}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: refreshToken as string, token_type_hint: 'refresh_token' }),
    });
    expect(revoked.status).toBe(200);
    await delay(ACCESS_TOKEN_TTL_SEC * 1000 + 200);
    // An expired access token alone ends nothing: the session has not ended yet.
    expect(stillOpen(onA) && stillOpen(onB)).toBe(true);
    const endedAt = Date.now();
    const res = await request(b.gateway.url).get('/api/echo/x').set('Cookie', session.cookie).set('x-csrf', '1');
    expect(res.status).toBe(401);
    expect(JSON.parse(res.text).code).toBe('session_expired');
    await expectClosedBy('refresh refused on B, socket on A', onA, endedAt);
    await expectClosedBy('refresh refused on B, socket on B', onB, endedAt);
  });
});

describe('timeouts', () => {
  test("idle timeout: WebSocket traffic is not activity; with no HTTP activity the sockets on both instances close with 1008 within 2 s of the record's expiry", async () => {
    const session = await login(shortA);
    const [onA, onB] = [await openSocket(shortA, session), await openSocket(shortB, session)];
    // The end event is the store expiring the record: watch for it (EXISTS does not slide the idle timeout).
    let endedAt: number | undefined;
    const giveUp = Date.now() + (IDLE_SEC + 3) * 1000;
    while (endedAt === undefined && Date.now() < giveUp) {
      onA.socket.send('traffic');
      if ((await redis.exists(session.storeKey)) === 0) endedAt = Date.now();
      else await delay(20);
    }
    expect(endedAt).toBeDefined();
    const closedA = await expectClosedBy('idle timeout, socket on A', onA, endedAt as number);
    const closedB = await expectClosedBy('idle timeout, socket on B', onB, endedAt as number);
    // Not before the end: the last poll that still found the record was at most 20 ms (plus a round trip) earlier.
    expect(Math.min(closedA.at, closedB.at)).toBeGreaterThan((endedAt as number) - 100);
  });

  test('absolute timeout: even a session active over HTTP ends, and its sockets on both instances close with 1008 within 2 s', async () => {
    const session = await login(shortA);
    const [onA, onB] = [await openSocket(shortA, session), await openSocket(shortB, session)];
    // Active every 150 ms (the idle timeout keeps sliding) until the absolute deadline ends the session.
    let lastAliveAt = Date.now();
    const giveUp = Date.now() + (ABSOLUTE_SEC + 3) * 1000;
    for (;;) {
      const startedAt = Date.now();
      const res = await request(shortA.gateway.url).get('/api/echo/x').set('Cookie', session.cookie).set('x-csrf', '1');
      if (res.status !== 200) {
        expect(res.status).toBe(401);
        break;
      }
      lastAliveAt = startedAt;
      expect(stillOpen(onA) && stillOpen(onB)).toBe(true);
      expect(Date.now()).toBeLessThan(giveUp);
      await delay(150);
    }
    // The session ended after the last request that still found it: measured from there, the latency is an upper bound.
    await expectClosedBy('absolute timeout, socket on A', onA, lastAliveAt);
    await expectClosedBy('absolute timeout, socket on B', onB, lastAliveAt);
  });

  test("idle timeout on the memory store (one instance, no Redis): the socket closes with 1008 within 2 s of the session's expiry", async () => {
    const loginStartedAt = Date.now();
    const jar = new CookieJar();
    const { cookieHeader } = await loginThroughGateway(memory.url, jar);
    const session = { cookie: cookieHeader, storeKey: '' };
    const openedAt = Date.now();
    const socket = await openSocket(memory, session);
    // The record's expiry is not observable from outside here: the last write or touch was between the login and the handshake.
    const closed = await expectClosedBy('idle timeout on the memory store, from the latest possible expiry', socket, openedAt + IDLE_SEC * 1000);
    expect(closed.at).toBeGreaterThanOrEqual(loginStartedAt + IDLE_SEC * 1000);
  });
});
