import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { startEcho, type EchoServer } from '../support/echo.ts';
import { killIfRunning, startGatewayChild, type GatewayChild, type LogLine } from '../support/gateway-child.ts';
import { startIdp, type TestIdp } from '../support/idp.ts';
import { apiGet, tryConnect } from '../support/drain-probes.ts';
import { scrape } from '../support/metrics.ts';

/**
 * BFF_WORKERS=2: `node src/index.ts` as a container runs it, a primary and two
 * workers behind one port. The primary serves the admin port; its metrics add
 * up the workers'; SIGTERM drains every worker; a worker killed with -9 is
 * replaced while the other keeps serving.
 */

const ROUTE = '/api/slow';

let idp: TestIdp;
let echo: EchoServer;
let dir: string;
let routesFile: string;
let child: GatewayChild | undefined;

beforeAll(async () => {
  idp = await startIdp({ redirectUris: ['http://127.0.0.1:1/auth/callback'] });
  echo = await startEcho();
  dir = mkdtempSync(join(tmpdir(), 'bff-workers-'));
  routesFile = join(dir, 'routes.json');
  writeFileSync(routesFile, JSON.stringify({ routes: [{ prefix: ROUTE, target: echo.url, token: 'none' }] }));
});
afterEach(() => {
  killIfRunning(child);
  child = undefined;
});
afterAll(async () => {
  await echo?.close();
  await idp?.close();
  rmSync(dir, { recursive: true, force: true });
});

const startWorkers = (env: Record<string, string> = {}, ownProcessGroup = false): Promise<GatewayChild> =>
  startGatewayChild({ issuer: idp.issuer, routesFile, cwd: dir, env: { BFF_WORKERS: '2', ...env }, ownProcessGroup });

/** Every series of the request counter for the route, summed: what a dashboard's sum() shows. */
async function requestsCounted(adminUrl: string): Promise<number> {
  return (await scrape(adminUrl))
    .series('bff_http_requests_total')
    .filter((series) => series.labels.route === ROUTE)
    .reduce((sum, series) => sum + series.value, 0);
}

/** Polls the primary's /metrics until the counter reaches `expected` (it counts when a response ends, a moment after the client has it). */
async function untilCounted(adminUrl: string, expected: number): Promise<number> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const counted = await requestsCounted(adminUrl);
    if (counted >= expected || Date.now() > deadline) return counted;
    await delay(50);
  }
}

const accessLines = (gw: GatewayChild): LogLine[] => gw.lines().filter((line) => line.msg === 'request completed' && (line.req as { path?: string } | undefined)?.path?.startsWith(ROUTE));

async function untilEchoed(count: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (echo.requests.length < count) {
    if (Date.now() > deadline) throw new Error('the upstream never received the request');
    await delay(10);
  }
}

describe('BFF_WORKERS=2', () => {
  test('two workers share the main port; the primary serves the admin port, and its request counter is the sum of both workers', async () => {
    const gw = (child = await startWorkers());
    const announced = await gw.line((line) => line.msg === 'workers started');
    expect(announced).toMatchObject({ workers: 2 });
    expect(announced.worker).toBeUndefined();
    const listening = gw.lines().filter((line) => line.msg === 'bff-gateway listening');
    expect(listening).toHaveLength(2);
    expect(new Set(listening.map((line) => line.worker)).size).toBe(2);
    expect(new Set(listening.map((line) => line.pid)).size).toBe(2);
    expect(listening.map((line) => line.pid)).not.toContain(gw.process.pid);

    const ready = await fetch(`${gw.adminUrl}/readyz`);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { store: true, idp: true, workers: { ready: 2, expected: 2 } } });
    expect((await fetch(`${gw.adminUrl}/healthz`)).status).toBe(200);

    const K = 20;
    for (let i = 0; i < K; i++) expect((await apiGet(`${gw.url}${ROUTE}/n${i}`)).status).toBe(200);
    expect(await untilCounted(gw.adminUrl, K)).toBe(K);
    const metrics = await scrape(gw.adminUrl);
    expect(metrics.value('bff_http_request_duration_seconds_count', { route: ROUTE })).toBe(K);
    expect(metrics.value('bff_workers')).toBe(2);

    // Each access log line names its worker: both served some of the K requests.
    await gw.line(() => accessLines(gw).length === K);
    const perWorker = new Map<unknown, number>();
    for (const line of accessLines(gw)) perWorker.set(line.worker, (perWorker.get(line.worker) ?? 0) + 1);
    expect(perWorker.size).toBe(2);
    for (const [worker, served] of perWorker) expect([worker, served > 0]).toEqual([worker, true]);

    gw.process.kill('SIGTERM');
    expect(await gw.exited).toEqual({ code: 0, signal: null });
  }, 60_000);

  test('SIGTERM: readiness 503 at once, an in-flight slow request completes, new connections are refused, exit code 0', async () => {
    const gw = (child = await startWorkers());
    const before = echo.requests.length;
    const slow = apiGet(`${gw.url}${ROUTE}/__slow?ms=1500`);
    await untilEchoed(before + 1);

    const signalledAt = Date.now();
    gw.process.kill('SIGTERM');
    await gw.line((line) => line.msg?.startsWith('shutting down') === true && line.worker === undefined);
    const ready = await fetch(`${gw.adminUrl}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'shutting down' });
    let refused = 'connected';
    while (refused === 'connected' && Date.now() - signalledAt < 3000) {
      refused = await tryConnect(gw.url);
      if (refused === 'connected') await delay(20);
    }
    expect(refused).toBe('ECONNREFUSED');

    const answer = await slow;
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ method: 'GET', url: `${ROUTE}/__slow?ms=1500` });
    expect(await gw.exited).toEqual({ code: 0, signal: null });
    // Each worker drained and said so, then the primary.
    const completes = gw.lines().filter((line) => line.msg === 'shutdown complete');
    expect(completes.map((line) => line.worker ?? 'primary').sort()).toEqual([1, 2, 'primary']);
  }, 60_000);

  test('Ctrl-C in a terminal (SIGINT to the primary and its workers at once) drains every worker once: the slow request completes, exit code 0', async () => {
    const gw = (child = await startWorkers({}, true));
    const before = echo.requests.length;
    const slow = apiGet(`${gw.url}${ROUTE}/__slow?ms=1500`);
    await untilEchoed(before + 1);
    process.kill(-(gw.process.pid as number), 'SIGINT');
    expect((await slow).status).toBe(200);
    expect(await gw.exited).toEqual({ code: 0, signal: null });
    expect(gw.lines().filter((line) => line.msg === 'second signal: exiting at once')).toEqual([]);
    expect(gw.lines().filter((line) => line.msg === 'shutdown complete')).toHaveLength(3);
  }, 60_000);

  test('a second signal exits at once, with 128 + the signal number', async () => {
    const gw = (child = await startWorkers());
    const before = echo.requests.length;
    const slow = apiGet(`${gw.url}${ROUTE}/__slow?ms=20000`).catch(() => undefined);
    await untilEchoed(before + 1);
    gw.process.kill('SIGTERM');
    await gw.line((line) => line.msg?.startsWith('shutting down') === true && line.worker === undefined);
    gw.process.kill('SIGINT');
    expect(await gw.exited).toEqual({ code: 130, signal: null });
    await slow;
  }, 60_000);

  test('a worker killed with -9 is logged and replaced; requests keep succeeding and the counters keep adding up', async () => {
    const gw = (child = await startWorkers());
    await gw.line((line) => line.msg === 'workers started');
    for (let i = 0; i < 6; i++) expect((await apiGet(`${gw.url}${ROUTE}/before${i}`)).status).toBe(200);
    // The primary has seen both workers' counts (a scrape), so the victim's share must stay in the sum.
    expect(await untilCounted(gw.adminUrl, 6)).toBe(6);

    const started = gw.lines().filter((line) => line.msg === 'worker started');
    const victim = started[0];
    expect(victim?.pid).toEqual(expect.any(Number));
    process.kill(victim?.pid as number, 'SIGKILL');
    const crash = await gw.line((line) => line.msg === 'worker exited unexpectedly; starting a replacement');
    expect(crash).toMatchObject({ level: 50, worker: victim?.worker, pid: victim?.pid, signal: 'SIGKILL', exitCode: null });

    // The other worker serves meanwhile.
    for (let i = 0; i < 4; i++) expect((await apiGet(`${gw.url}${ROUTE}/during${i}`)).status).toBe(200);
    const replacement = await gw.line((line) => line.msg === 'worker started' && line.pid !== started[0]?.pid && line.pid !== started[1]?.pid);
    expect(replacement.worker).toBe(3);
    const deadline = Date.now() + 10_000;
    while ((await fetch(`${gw.adminUrl}/readyz`)).status !== 200 && Date.now() < deadline) await delay(100);
    expect(await (await fetch(`${gw.adminUrl}/readyz`)).json()).toMatchObject({ status: 'ready', checks: { workers: { ready: 2, expected: 2 } } });

    for (let i = 0; i < 6; i++) expect((await apiGet(`${gw.url}${ROUTE}/after${i}`)).status).toBe(200);
    expect(await untilCounted(gw.adminUrl, 16)).toBe(16);
    const metrics = await scrape(gw.adminUrl);
    expect(metrics.value('bff_worker_restarts_total')).toBe(1);
    expect(metrics.value('bff_workers')).toBe(2);
    // The replacement served some of the last requests.
    await gw.line(() => accessLines(gw).filter((line) => line.worker === replacement.worker).length > 0);

    gw.process.kill('SIGTERM');
    expect(await gw.exited).toEqual({ code: 0, signal: null });
  }, 60_000);

  test('a worker an operator stops with SIGTERM drains, is replaced, and is logged as a clean stop, not a crash', async () => {
    const gw = (child = await startWorkers());
    await gw.line((line) => line.msg === 'workers started');
    const victim = gw.lines().find((line) => line.msg === 'worker started');
    process.kill(victim?.pid as number, 'SIGTERM');
    const stopped = await gw.line((line) => line.msg === 'worker stopped on its own (exit code 0); starting a replacement');
    expect(stopped).toMatchObject({ level: 40, worker: victim?.worker, exitCode: 0 });
    await gw.line((line) => line.msg === 'worker started' && line.worker === 3);
    expect(gw.lines().filter((line) => line.msg === 'worker exited unexpectedly; starting a replacement')).toEqual([]);
    gw.process.kill('SIGTERM');
    expect(await gw.exited).toEqual({ code: 0, signal: null });
  }, 60_000);

  test('a replacement that loads another configuration (the routes file changed since start-up) stops the primary with exit 1 instead of serving beside the others', async () => {
    const ownRoutes = join(dir, 'routes-changing.json');
    writeFileSync(ownRoutes, JSON.stringify({ routes: [{ prefix: ROUTE, target: echo.url, token: 'none' }] }));
    const gw = (child = await startGatewayChild({ issuer: idp.issuer, routesFile: ownRoutes, cwd: dir, env: { BFF_WORKERS: '2' } }));
    await gw.line((line) => line.msg === 'workers started');
    writeFileSync(
      ownRoutes,
      JSON.stringify({
        routes: [
          { prefix: ROUTE, target: echo.url, token: 'none' },
          { prefix: '/api/new', target: echo.url, token: 'none' },
        ],
      }),
    );
    const victim = gw.lines().find((line) => line.msg === 'worker started');
    process.kill(victim?.pid as number, 'SIGKILL');
    const refused = await gw.line((line) => typeof line.msg === 'string' && line.msg.startsWith('a worker loaded another configuration than the primary'));
    expect(refused).toMatchObject({ level: 60, worker: 3 });
    expect(await gw.exited).toEqual({ code: 1, signal: null });
  }, 60_000);

  test("a worker that cannot start (its port is taken) stops the primary with the worker's exit code; no replacement is tried", async () => {
    const squatter = http.createServer();
    await new Promise<void>((done) => squatter.listen(0, '0.0.0.0', done));
    const port = (squatter.address() as { port: number }).port;
    try {
      const gw = (child = await startGatewayChild({ issuer: idp.issuer, routesFile, cwd: dir, port, env: { BFF_WORKERS: '2' }, waitReady: false }));
      expect(await gw.exited).toEqual({ code: 1, signal: null });
      expect(gw.output()).toContain('EADDRINUSE');
      expect(gw.lines().some((line) => line.msg === 'a worker failed to start (its error is above); stopping with its exit code')).toBe(true);
      expect(gw.lines().filter((line) => line.msg === 'worker exited unexpectedly; starting a replacement')).toEqual([]);
    } finally {
      await new Promise<void>((done) => squatter.close(() => done()));
    }
  }, 60_000);
});
