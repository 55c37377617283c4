import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { WebSocket, WebSocketServer } from 'ws';
import { startEcho, type EchoServer } from '../support/echo.ts';
import { startTestGateway } from '../support/gateway.ts';
import { startIdp, TEST_CLIENT_ID, TEST_CLIENT_SECRET, type TestIdp } from '../support/idp.ts';
import { TEST_SESSION_SECRET } from '../support/gateway.ts';
import { apiGet, tryConnect } from '../support/drain-probes.ts';
import { scrape } from '../support/metrics.ts';
import { getFreePort } from '../support/ports.ts';
import { testRedisUrl } from '../support/redis.ts';

const ENTRY = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/index.ts');
const STREAM_CHUNKS = 10;
const STREAM_INTERVAL_MS = 150;

let idp: TestIdp;
let echo: EchoServer;
let streamer: http.Server;
let streamerUrl: string;
let dir: string;

beforeAll(async () => {
  idp = await startIdp({ redirectUris: ['http://127.0.0.1:1/auth/callback'] });
  echo = await startEcho();
  // An upstream that streams a response slowly, like a download or server-sent events.
  streamer = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    let sent = 0;
    const timer = setInterval(() => {
      res.write(`chunk ${++sent}\n`);
      if (sent === STREAM_CHUNKS) {
        clearInterval(timer);
        res.end();
      }
    }, STREAM_INTERVAL_MS);
    res.on('close', () => clearInterval(timer));
  });
  await new Promise<void>((done) => streamer.listen(0, '127.0.0.1', done));
  streamerUrl = `http://127.0.0.1:${(streamer.address() as AddressInfo).port}`;
  dir = mkdtempSync(join(tmpdir(), 'bff-shutdown-'));
  writeFileSync(
    join(dir, 'routes.json'),
    JSON.stringify({
      routes: [
        { prefix: '/api/slow', target: echo.url, token: 'none' },
        { prefix: '/api/stream', target: streamerUrl, token: 'none' },
      ],
    }),
  );
});
afterAll(async () => {
  await echo?.close();
  streamer?.closeAllConnections();
  await new Promise<void>((done) => (streamer ? streamer.close(() => done()) : done()));
  await idp?.close();
  rmSync(dir, { recursive: true, force: true });
});

type Child = { process: ChildProcess; url: string; adminUrl: string; output: () => string; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> };
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/** `node src/index.ts` configured through its environment, as a container would run it; resolves once it is ready. */
async function startChild(extraEnv: Record<string, string> = {}): Promise<Child> {
  const port = await getFreePort();
  const adminPort = await getFreePort();
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '',
    BFF_PUBLIC_URL: `http://127.0.0.1:${port}`,
    BFF_PORT: String(port),
    BFF_ADMIN_PORT: String(adminPort),
    BFF_ISSUER_URL: idp.issuer,
    BFF_ALLOW_INSECURE_ISSUER: 'true',
    BFF_CLIENT_ID: TEST_CLIENT_ID,
    BFF_CLIENT_SECRET: TEST_CLIENT_SECRET,
    BFF_SESSION_SECRETS: TEST_SESSION_SECRET,
    BFF_REDIS_URL: testRedisUrl(),
    BFF_ROUTES_FILE: join(dir, 'routes.json'),
    BFF_LOG_LEVEL: 'info',
    ...extraEnv,
  };
  const child = spawn(process.execPath, [ENTRY], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => child.once('exit', (code, signal) => done({ code, signal })));
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    const status = await fetch(`${adminUrl}/readyz`).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) break;
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`gateway child did not become ready:\n${output}`);
    await delay(100);
  }
  return { process: child, url: `http://127.0.0.1:${port}`, adminUrl, output: () => output, exited };
}

async function untilEchoed(count: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (echo.requests.length < count) {
    if (Date.now() > deadline) throw new Error('the upstream never received the request');
    await delay(10);
  }
}

describe('SIGTERM to node src/index.ts', () => {
  test('an in-flight slow request and a stream complete, new connections are refused, readiness is 503, exit code 0', async () => {
    const gw = await startChild();
    // Keep-alive connections, idle or busy at the signal, must not hold the shutdown for their keep-alive timeout (5 s).
    const idle = new http.Agent({ keepAlive: true });
    const busy = new http.Agent({ keepAlive: true });
    expect((await apiGet(`${gw.url}/api/slow/warm`, idle)).status).toBe(200);

    const before = echo.requests.length;
    const slow = apiGet(`${gw.url}/api/slow/__slow?ms=1500`, busy);
    const stream = apiGet(`${gw.url}/api/stream/feed`);
    await untilEchoed(before + 1);

    const signalledAt = Date.now();
    gw.process.kill('SIGTERM');
    let refused = 'connected';
    while (refused === 'connected' && Date.now() - signalledAt < 2000) {
      refused = await tryConnect(gw.url);
      if (refused === 'connected') await delay(20);
    }
    expect(refused).toBe('ECONNREFUSED');
    const ready = await fetch(`${gw.adminUrl}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'shutting down' });

    const slowAnswer = await slow;
    expect(slowAnswer.status).toBe(200);
    expect(JSON.parse(slowAnswer.body)).toMatchObject({ method: 'GET', url: '/api/slow/__slow?ms=1500' });
    const streamAnswer = await stream;
    expect(streamAnswer.status).toBe(200);
    expect(streamAnswer.body.trim().split('\n')).toHaveLength(STREAM_CHUNKS);

    const exit = await gw.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    // Not held until the idle connection's 5 s keep-alive timeout: the stream (1.5 s) was the last thing to wait for.
    expect(Date.now() - signalledAt).toBeLessThan(4500);
    expect(gw.output()).toContain('shutdown complete');
    idle.destroy();
    busy.destroy();
  }, 30_000);

  test('past BFF_SHUTDOWN_TIMEOUT the remaining requests are cut and the process still exits 0', async () => {
    const gw = await startChild({ BFF_SHUTDOWN_TIMEOUT: '1' });
    const before = echo.requests.length;
    const slow = apiGet(`${gw.url}/api/slow/__slow?ms=20000`).then(
      () => 'answered',
      (err: NodeJS.ErrnoException) => err.code ?? 'error',
    );
    await untilEchoed(before + 1);
    const signalledAt = Date.now();
    gw.process.kill('SIGTERM');
    expect(await gw.exited).toEqual({ code: 0, signal: null });
    expect(Date.now() - signalledAt).toBeLessThan(10_000);
    expect(await slow).toBe('ECONNRESET');
  }, 30_000);

  test('a second signal exits at once, with 128 + the signal number', async () => {
    const gw = await startChild();
    const before = echo.requests.length;
    const slow = apiGet(`${gw.url}/api/slow/__slow?ms=20000`).catch(() => undefined);
    await untilEchoed(before + 1);
    gw.process.kill('SIGTERM');
    await delay(200);
    expect(gw.process.exitCode).toBeNull();
    gw.process.kill('SIGINT');
    expect(await gw.exited).toEqual({ code: 130, signal: null });
    await slow;
  }, 30_000);
});

describe('WebSockets at shutdown', () => {
  test('an open WebSocket is counted, then closed with 1001 (going away) when the gateway shuts down', async () => {
    const upstream = http.createServer();
    const wss = new WebSocketServer({ server: upstream });
    wss.on('connection', (socket) => socket.on('message', (data) => socket.send(`echo:${data.toString()}`)));
    await new Promise<void>((done) => upstream.listen(0, '127.0.0.1', done));
    const gw = await startTestGateway({
      url: `http://127.0.0.1:${await getFreePort()}`,
      issuer: idp.issuer,
      routes: [{ prefix: '/api/ws', target: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, token: 'none', websocket: true }],
    });
    let client: WebSocket | undefined;
    try {
      client = new WebSocket(`${gw.gateway.url.replace('http', 'ws')}/api/ws/feed`, { headers: { origin: gw.url } });
      const opened = client;
      await new Promise<void>((done, reject) => {
        opened.once('open', () => done());
        opened.once('error', reject);
      });
      const reply = new Promise<string>((done) => opened.once('message', (data) => done(data.toString())));
      opened.send('hello');
      expect(await reply).toBe('echo:hello');
      expect((await scrape(gw.gateway.adminUrl)).value('bff_websockets_active')).toBe(1);

      const closed = new Promise<{ code: number; reason: string }>((done) => opened.once('close', (code, reason) => done({ code, reason: reason.toString() })));
      await gw.close();
      expect(await closed).toEqual({ code: 1001, reason: 'server shutting down' });
    } finally {
      client?.terminate();
      await gw.close();
      for (const socket of wss.clients) socket.terminate();
      await new Promise<void>((done) => wss.close(() => done()));
      upstream.closeAllConnections();
      await new Promise<void>((done) => upstream.close(() => done()));
    }
  }, 30_000);
});
