import http, { type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { parseResponse, RawConnection, rawExchange, waitUntil, type RawResponse } from '../support/raw-socket.ts';
import { loadConfigWithRoutes } from '../support/routes-config.ts';
import { startStack, type Stack } from '../support/stack.ts';

/**
 * A slow client cannot hold a route's upstream capacity (DESIGN.md, Proxying): a request
 * that gets no upstream connection within the route's `timeoutMs` is answered 503
 * `upstream_busy`; small bodies are read before an upstream connection is taken; large
 * streamed uploads are bounded per client address (429 `too_many_uploads`).
 */

function problemCode(res: RawResponse): unknown {
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  return (JSON.parse(res.text) as { code?: unknown }).code;
}

/** 200, or 503 problem+json `upstream_busy`: the two answers a request may get while a route is under pressure. */
function expectServedOrBusy(res: RawResponse): void {
  expect([200, 503]).toContain(res.status);
  if (res.status === 503) expect(problemCode(res)).toBe('upstream_busy');
}

/** An upstream whose `…/hold` responses send their headers and then stay open until released. */
type HoldUpstream = { url: string; requests: string[]; held: ServerResponse[]; release(): void; close(): Promise<void> };

async function startHoldUpstream(): Promise<HoldUpstream> {
  const requests: string[] = [];
  const held: ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    req.resume();
    if ((req.url ?? '').endsWith('/hold')) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('holding\n');
      held.push(res);
      return;
    }
    const body = JSON.stringify({ url: req.url });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const release = (): void => {
    for (const res of held.splice(0)) res.end('released\n');
  };
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    held,
    release,
    async close() {
      release();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('a route whose upstream connections are all in use', () => {
  const TIMEOUT_MS = 1000;
  /** A small pool (route option `maxConnections`), so that filling it is cheap and deterministic. */
  const MAX_CONNECTIONS = 2;
  let upstream: HoldUpstream;
  let stack: Stack;

  beforeAll(async () => {
    const routes = [{ prefix: '/api/held', target: 'HOLD', token: 'none', timeoutMs: TIMEOUT_MS, maxConnections: MAX_CONNECTIONS }];
    // A route the gateway refuses fails the suite here, before any server is started.
    loadConfigWithRoutes(routes.map((route) => ({ ...route, target: 'http://hold.invalid:8080' })));
    upstream = await startHoldUpstream();
    stack = await startStack({ routes: routes.map((route) => ({ ...route, target: upstream.url })) });
  });
  afterAll(async () => {
    await stack?.close();
    await upstream?.close();
  });

  test('answers 503 upstream_busy after timeoutMs, sends nothing upstream, and serves again once a connection is free', async () => {
    const holders: RawConnection[] = [];
    try {
      for (let i = 0; i < MAX_CONNECTIONS; i++) {
        const conn = await RawConnection.open(stack.gw.url);
        holders.push(conn);
        conn.write(`GET /api/held/${i}/hold HTTP/1.1\r\nHost: ${new URL(stack.gw.url).host}\r\nx-csrf: 1\r\n\r\n`);
      }
      // Each holder's response has begun (headers sent) and stays open: every upstream connection is in use.
      expect(await waitUntil(() => upstream.held.length === MAX_CONNECTIONS, 5000)).toBe(true);

      const busy = await rawExchange(stack.gw.url, `GET /api/held/waiting HTTP/1.1\r\nHost: ${new URL(stack.gw.url).host}\r\nx-csrf: 1\r\n\r\n`, {
        // The holders are never released on their own: a gateway that keeps waiting would never answer.
        timeoutMs: TIMEOUT_MS + 3000,
      });
      expect(busy.status).toBe(503);
      expect(problemCode(busy)).toBe('upstream_busy');
      expect(upstream.requests.filter((url) => url.endsWith('/waiting'))).toEqual([]);

      upstream.release();
      for (const conn of holders) expect((await conn.readResponse({ timeoutMs: 5000 })).status).toBe(200);
      const served = await rawExchange(stack.gw.url, `GET /api/held/after HTTP/1.1\r\nHost: ${new URL(stack.gw.url).host}\r\nx-csrf: 1\r\n\r\n`, {
        timeoutMs: TIMEOUT_MS + 3000,
      });
      expect(served.status).toBe(200);
      expect(upstream.requests.filter((url) => url.endsWith('/after'))).toHaveLength(1);
    } finally {
      for (const conn of holders) conn.close();
      upstream.release();
    }
  });
});

describe('trickling uploads from one client', () => {
  const TIMEOUT_MS = 2000;
  const TRICKLERS = 256;
  /** BFF_PROXY_MAX_STREAMS_PER_CLIENT's default. */
  const STREAMS_PER_CLIENT = 16;
  const TRICKLE_EVERY_MS = 2000;
  /** An upper bound on how long tricklers keep going, should a test fail before stopping them. */
  const MAX_TICKS = 30;
  let stack: Stack;
  let host: string;

  beforeAll(async () => {
    stack = await startStack({ routes: [{ prefix: '/api/echo', target: 'ECHO', token: 'none', timeoutMs: TIMEOUT_MS }] });
    host = new URL(stack.gw.url).host;
  });
  afterAll(async () => {
    await stack?.close();
  });

  type Tricklers = { conns: RawConnection[]; stop(): void };

  /** `count` connections, each sending a POST whose body arrives one byte every 2 s. */
  async function startTricklers(count: number, path: string, contentLength: number): Promise<Tricklers> {
    const conns: RawConnection[] = [];
    let ticks = 0;
    const timer = setInterval(() => {
      ticks += 1;
      if (ticks >= MAX_TICKS) clearInterval(timer);
      for (const conn of conns) if (!conn.ended) conn.write('a');
    }, TRICKLE_EVERY_MS);
    const stop = (): void => {
      clearInterval(timer);
      for (const conn of conns) conn.close();
    };
    try {
      for (let i = 0; i < count; i++) {
        const conn = await RawConnection.open(stack.gw.url);
        conns.push(conn);
        conn.write(`POST ${path}/${i} HTTP/1.1\r\nHost: ${host}\r\nx-csrf: 1\r\nContent-Type: application/octet-stream\r\nContent-Length: ${contentLength}\r\n\r\na`);
      }
    } catch (err) {
      stop();
      throw err;
    }
    return { conns, stop };
  }

  /** Sends a GET from another connection and returns its answer and how long it took, from send to answer. */
  async function probe(path: string): Promise<{ res: RawResponse; ms: number }> {
    const conn = await RawConnection.open(stack.gw.url);
    try {
      const started = Date.now();
      conn.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nx-csrf: 1\r\n\r\n`);
      const res = await conn.readResponse({ timeoutMs: TIMEOUT_MS + 1000 });
      return { res, ms: Date.now() - started };
    } finally {
      conn.close();
    }
  }

  const seenUpstream = (prefix: string): number => stack.echo.requests.filter((r) => r.url.startsWith(prefix)).length;

  function refusedUploads(conns: RawConnection[]): number {
    return conns.filter((conn) => {
      const parsed = parseResponse(conn.received, { ended: conn.ended });
      return parsed !== undefined && parsed.response.status === 429 && (JSON.parse(parsed.response.text) as { code?: unknown }).code === 'too_many_uploads';
    }).length;
  }

  test('256 small uploads trickling: another request is still answered within timeoutMs + 1 s, and all is well once they stop', async () => {
    const tricklers = await startTricklers(TRICKLERS, '/api/echo/small', 1000);
    try {
      // A gateway that connects upstream before reading a small body has forwarded them all by now; one
      // that buffers small bodies sends nothing upstream, so this waits its bound (there is nothing to wait on).
      await waitUntil(() => seenUpstream('/api/echo/small/') >= TRICKLERS, 3000);
      const { res, ms } = await probe('/api/echo/probe-small');
      expectServedOrBusy(res);
      expect(ms).toBeLessThanOrEqual(TIMEOUT_MS + 1000);
    } finally {
      tricklers.stop();
    }
    const { res } = await probe('/api/echo/after-small');
    expect(res.status).toBe(200);
  }, 60_000);

  test('256 large uploads trickling: most are refused 429 too_many_uploads, and another request is still answered within timeoutMs + 1 s', async () => {
    const tricklers = await startTricklers(TRICKLERS, '/api/echo/large', 10_000_000);
    try {
      // Each large upload is either streaming to the upstream or refused: wait until every one is one or the other.
      await waitUntil(() => seenUpstream('/api/echo/large/') + refusedUploads(tricklers.conns) >= TRICKLERS, 10_000);
      const { res, ms } = await probe('/api/echo/probe-large');
      expectServedOrBusy(res);
      expect(ms).toBeLessThanOrEqual(TIMEOUT_MS + 1000);
      expect(refusedUploads(tricklers.conns)).toBeGreaterThanOrEqual(TRICKLERS - STREAMS_PER_CLIENT);
      expect(seenUpstream('/api/echo/large/')).toBeLessThanOrEqual(STREAMS_PER_CLIENT);
    } finally {
      tricklers.stop();
    }
    const { res } = await probe('/api/echo/after-large');
    expect(res.status).toBe(200);
  }, 60_000);
});
