import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import http from 'node:http';
import { connect, type Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { startStack, type Stack } from '../support/stack.ts';

/**
 * Header, URL and slow-client limits, on a real gateway over raw sockets: what a client
 * sees is the bytes the gateway writes and when it closes the connection.
 */
const HEADERS_TIMEOUT_MS = 1000;
const BODY_IDLE_MS = 1000;
const KEEPALIVE_MS = 3000;

let stack: Stack;
let host: string;
let port: number;

beforeAll(async () => {
  stack = await startStack({
    routes: [{ prefix: '/api/echo', target: 'ECHO', token: 'none' }],
    env: {
      BFF_MAX_HEADER_SIZE: '8192',
      BFF_MAX_URL_LENGTH: '2048',
      BFF_HEADERS_TIMEOUT: `${HEADERS_TIMEOUT_MS / 1000}s`,
      BFF_BODY_IDLE_TIMEOUT: `${BODY_IDLE_MS / 1000}s`,
      BFF_KEEPALIVE_TIMEOUT: `${KEEPALIVE_MS / 1000}s`,
    },
  });
  const url = new URL(stack.gw.url);
  host = url.hostname;
  port = Number(url.port);
});
afterAll(async () => {
  await stack?.close();
});

interface RawExchange {
  /** Everything the gateway wrote. */
  received: string;
  /** When the gateway closed the connection, in ms after it was opened; undefined if it was still open when the script ended. */
  closedAfterMs: number | undefined;
  /** How many of the script's writes happened before the close. */
  writes: number;
}

/**
 * Opens a TCP connection and plays `script`: each step writes its bytes, then waits its
 * delay. Resolves when the gateway closes the connection, or `endAfterMs` after the script
 * ends (then closing it from this side).
 */
function raw(script: Array<[string | Buffer, number]>, endAfterMs = 500): Promise<RawExchange> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, host);
    const opened = Date.now();
    let received = '';
    let closedAfterMs: number | undefined;
    let writes = 0;
    let done = false;
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
    });
    socket.on('error', () => {
      // A reset after the gateway gave up is an expected way for these exchanges to end.
    });
    socket.on('close', () => {
      closedAfterMs ??= Date.now() - opened;
      if (!done) {
        done = true;
        resolve({ received, closedAfterMs, writes });
      }
    });
    socket.once('connect', async () => {
      try {
        for (const [bytes, wait] of script) {
          if (socket.destroyed || closedAfterMs !== undefined) break;
          socket.write(bytes);
          writes += 1;
          await delay(wait);
        }
        await delay(endAfterMs);
        if (!done) {
          done = true;
          socket.destroy();
          resolve({ received, closedAfterMs: undefined, writes });
        }
      } catch (err) {
        reject(err);
      }
    });
    socket.on('end', () => {
      closedAfterMs ??= Date.now() - opened;
    });
  });
}

/** Status and parsed body of the first HTTP response in `received`. */
function firstResponse(received: string): { status: number; headers: string; body: string } {
  const end = received.indexOf('\r\n\r\n');
  const head = received.slice(0, end);
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
  const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0);
  return { status, headers: head, body: received.slice(end + 4, end + 4 + length) };
}

async function stillServing(): Promise<void> {
  const res = await fetch(`${stack.gw.url}/auth/user`);
  expect(res.status).toBe(401);
  await res.arrayBuffer();
}

describe('size limits', () => {
  test('a header too large → 431 problem+json, and the gateway keeps serving', async () => {
    const exchange = await raw([[`GET /auth/user HTTP/1.1\r\nHost: ${host}\r\nCookie: big=${'x'.repeat(9000)}\r\n\r\n`, 0]]);
    const response = firstResponse(exchange.received);
    expect(response.status).toBe(431);
    expect(response.headers).toMatch(/\r\ncontent-type: application\/problem\+json/i);
    expect(response.headers).toMatch(/\r\nconnection: close/i);
    expect(JSON.parse(response.body)).toMatchObject({ status: 431, code: 'headers_too_large', title: 'Request Header Fields Too Large' });
    expect(exchange.closedAfterMs).toBeDefined();
    await stillServing();
  });

  test('headers just under the limit are served', async () => {
    const res = await fetch(`${stack.gw.url}/auth/user`, { headers: { cookie: `big=${'x'.repeat(7000)}` } });
    expect(res.status).toBe(401);
    await res.arrayBuffer();
  });

  test('a URL too long → 414 problem+json', async () => {
    const res = await fetch(`${stack.gw.url}/auth/login?returnTo=/${'a'.repeat(2100)}`, { redirect: 'manual' });
    expect(res.status).toBe(414);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toMatchObject({ status: 414, code: 'url_too_long', title: 'URI Too Long' });
    // The same on the proxy's paths, before any upstream is involved.
    const echoed = stack.echo.requests.length;
    const api = await fetch(`${stack.gw.url}/api/echo/${'b'.repeat(2100)}`, { headers: { 'x-csrf': '1' } });
    expect(api.status).toBe(414);
    await api.arrayBuffer();
    expect(stack.echo.requests.length).toBe(echoed);
  });

  test('a URL longer than the header limit itself → 431 (Node refuses the request line before any handler)', async () => {
    const exchange = await raw([[`GET /auth/user?x=${'a'.repeat(9000)} HTTP/1.1\r\nHost: ${host}\r\n\r\n`, 0]]);
    expect(firstResponse(exchange.received).status).toBe(431);
  });

  test('malformed HTTP → 400 problem+json', async () => {
    const exchange = await raw([['NOT HTTP AT ALL\r\n\r\n', 0]]);
    const response = firstResponse(exchange.received);
    expect(response.status).toBe(400);
    expect(JSON.parse(response.body)).toMatchObject({ code: 'bad_request' });
  });
});

describe('slow clients', () => {
  test('a slow-loris client (headers byte by byte, slower than the headers timeout) is cut off', async () => {
    const request = `GET /auth/user HTTP/1.1\r\nHost: ${host}\r\nX-Slow: ${'s'.repeat(40)}\r\n\r\n`;
    // One byte every 100 ms: the whole request would take about 7 s.
    const exchange = await raw([...request].map((byte): [string, number] => [byte, 100]));
    expect(exchange.closedAfterMs).toBeDefined();
    expect(exchange.closedAfterMs as number).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 50);
    expect(exchange.closedAfterMs as number).toBeLessThan(HEADERS_TIMEOUT_MS + 1500);
    expect(exchange.writes).toBeLessThan(request.length);
    const response = firstResponse(exchange.received);
    expect(response.status).toBe(408);
    expect(JSON.parse(response.body)).toMatchObject({ code: 'request_timeout' });
    await stillServing();
  });

  test('a connection that never sends a request is closed after the headers timeout', async () => {
    const exchange = await raw([], 4000);
    expect(exchange.closedAfterMs).toBeDefined();
    expect(exchange.closedAfterMs as number).toBeLessThan(HEADERS_TIMEOUT_MS + 1500);
  });

  test('a request body that stalls for longer than the body idle timeout is cut off', async () => {
    const echoed = stack.echo.requests.length;
    const exchange = await raw(
      [
        [`POST /api/echo/upload HTTP/1.1\r\nHost: ${host}\r\nx-csrf: 1\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n`, 0],
        ['a'.repeat(100), 5000],
        ['a'.repeat(900), 0],
      ],
      0,
    );
    expect(exchange.closedAfterMs).toBeDefined();
    expect(exchange.closedAfterMs as number).toBeGreaterThanOrEqual(BODY_IDLE_MS - 50);
    expect(exchange.closedAfterMs as number).toBeLessThan(BODY_IDLE_MS + 1500);
    expect(exchange.writes).toBe(2);
    // The upstream saw the request begin, but never a complete body.
    expect(stack.echo.requests.length).toBeLessThanOrEqual(echoed + 1);
    await stillServing();
  });

  test('an upload that keeps moving is never cut, however long it takes (3 s at one chunk per 250 ms, with 1 s header and body idle timeouts)', async () => {
    const chunk = Buffer.alloc(64 * 1024, 7);
    const chunks = 12;
    const started = Date.now();
    const reply = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(`${stack.gw.url}/api/echo/upload`, { method: 'POST', headers: { 'x-csrf': '1', 'content-type': 'application/octet-stream' } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (text: string) => {
          body += text;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      void (async () => {
        for (let i = 0; i < chunks; i++) {
          req.write(chunk);
          await delay(250);
        }
        req.end();
      })();
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(3000);
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.body)).toMatchObject({ method: 'POST', bodyLength: chunk.length * chunks });
  });

  test('an idle keep-alive connection outlives the headers timeout and is closed after the keep-alive timeout', async () => {
    const get = `GET /auth/user HTTP/1.1\r\nHost: ${host}\r\n\r\n`;
    // Two requests 2 s apart on one connection (twice the headers timeout), then silence.
    const exchange = await raw(
      [
        [get, 2000],
        [get, 0],
      ],
      KEEPALIVE_MS + 3000,
    );
    expect(exchange.received.match(/HTTP\/1\.1 401/g)).toHaveLength(2);
    expect(exchange.received).toMatch(/\r\nkeep-alive: timeout=3/i);
    expect(exchange.closedAfterMs).toBeDefined();
    // Closed by the gateway once the keep-alive timeout (plus Node's 1 s grace) passed after the second answer.
    expect(exchange.closedAfterMs as number).toBeGreaterThanOrEqual(2000 + KEEPALIVE_MS - 100);
    expect(exchange.closedAfterMs as number).toBeLessThan(2000 + KEEPALIVE_MS + 2000);
  });
});
