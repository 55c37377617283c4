import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { WebSocket } from 'ws';
import { loginThroughGateway } from '../support/browser-flow.ts';
import { killIfRunning, startGatewayChild, type GatewayChild } from '../support/gateway-child.ts';
import { startIdp, type TestIdp } from '../support/idp.ts';
import { getFreePort } from '../support/ports.ts';
import { startWsEcho, upgradeOutcome, type WsEcho } from '../support/websocket.ts';

/**
 * Per-worker state that must still behave as one gateway: a session made
 * through one worker is known to every worker (Redis), and a back-channel
 * logout received by one worker closes the session's WebSockets on every
 * worker (each worker has its own invalidation subscription).
 */

const POLICY_VIOLATION = 1008;
const SOCKETS = 4;

let idp: TestIdp;
let upstream: WsEcho;
let dir: string;
let gw: GatewayChild | undefined;
const opened: WebSocket[] = [];

beforeAll(async () => {
  const port = await getFreePort();
  const url = `http://127.0.0.1:${port}`;
  idp = await startIdp({ redirectUris: [`${url}/auth/callback`], postLogoutRedirectUris: [`${url}/`], backchannelLogoutUri: `${url}/auth/backchannel-logout` });
  upstream = await startWsEcho();
  dir = mkdtempSync(join(tmpdir(), 'bff-workers-sessions-'));
  const routesFile = join(dir, 'routes.json');
  writeFileSync(routesFile, JSON.stringify({ routes: [{ prefix: '/api/ws', target: upstream.url, token: 'user', websocket: true }] }));
  gw = await startGatewayChild({ issuer: idp.issuer, routesFile, cwd: dir, port, env: { BFF_WORKERS: '2' } });
}, 60_000);
afterAll(async () => {
  for (const socket of opened) socket.terminate();
  if (gw) {
    gw.process.kill('SIGTERM');
    await gw.exited;
  }
  killIfRunning(gw);
  await upstream?.close();
  await idp?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** /auth/user on a connection of its own: each new connection goes to the next worker. */
async function user(url: string, cookie: string): Promise<{ status: number; body: { sub?: string; claims?: Record<string, unknown> } }> {
  const response = await fetch(`${url}/auth/user`, { headers: { cookie, connection: 'close' } });
  return { status: response.status, body: (await response.json()) as { sub?: string; claims?: Record<string, unknown> } };
}

test('a session made through one worker is known to both, and a back-channel logout received by one closes its WebSockets on both', async () => {
  const running = gw as GatewayChild;
  const { cookieHeader } = await loginThroughGateway(running.url);
  const answers = [];
  for (let i = 0; i < 4; i++) answers.push(await user(running.url, cookieHeader));
  expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 200]);
  // Each access log line names its worker (a line may reach us a moment after its response).
  const userLines = () => running.lines().filter((line) => line.msg === 'request completed' && (line.req as { path?: string }).path === '/auth/user');
  await running.line(() => userLines().length >= 4);
  expect(new Set(userLines().map((line) => line.worker)).size).toBe(2);
  const sub = answers[0]?.body.sub as string;
  const sid = answers[0]?.body.claims?.sid as string;
  expect(typeof sid).toBe('string');

  // One connection each: the cluster hands consecutive connections to alternate workers.
  const closed: Array<Promise<number>> = [];
  for (let i = 0; i < SOCKETS; i++) {
    const socket = new WebSocket(`${running.url.replace('http', 'ws')}/api/ws/chat`, { headers: { Cookie: cookieHeader, Origin: running.url } });
    opened.push(socket);
    closed.push(new Promise((resolve) => socket.once('close', (code) => resolve(code))));
    expect(await upgradeOutcome(socket)).toBe(101);
  }
  const deadline = Date.now() + 5000;
  while (upstream.open() < SOCKETS && Date.now() < deadline) await delay(20);
  expect(upstream.open()).toBe(SOCKETS);

  // oidc-provider POSTs a real logout token to the public URL: one worker gets it.
  await idp.sendBackchannelLogout(sub, sid);
  expect(await Promise.all(closed)).toEqual(Array.from({ length: SOCKETS }, () => POLICY_VIOLATION));
  const ended = await Promise.all([1, 2].map((worker) => running.line((line) => line.msg === 'session ended; its WebSockets were closed (1008)' && line.worker === worker, 5000)));
  expect(ended.reduce((sum, line) => sum + (line.sockets as number), 0)).toBe(SOCKETS);
  expect((await user(running.url, cookieHeader)).status).toBe(401);
}, 60_000);
