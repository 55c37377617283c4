import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { loginThroughGateway } from '../support/browser-flow.ts';
import type { EchoReply } from '../support/echo.ts';
import { chunked, RawConnection, type RawResponse } from '../support/raw-socket.ts';
import { startStack, type Stack } from '../support/stack.ts';

/**
 * `Expect: 100-continue` is the gateway's business: it is never forwarded, and it never
 * lets a request skip the per-request handling (route timeout, CSRF, authentication,
 * method allow-list). The client's side of the exchange is played over a raw socket:
 * write the head, wait for the gateway's answer, only then send the body.
 */

const ROUTE_TIMEOUT_MS = 300;
/** Far longer than the route timeout, and than the time this test waits for the 504. */
const UPSTREAM_DELAY_MS = 10_000;
const ANSWER_WAIT_MS = 4000;

let stack: Stack;
let cookie: string;
let host: string;

beforeAll(async () => {
  stack = await startStack({
    routes: [
      { prefix: '/api/echo', target: 'ECHO', token: 'user' },
      { prefix: '/api/slow', target: 'ECHO', token: 'user', timeoutMs: ROUTE_TIMEOUT_MS },
      { prefix: '/api/getonly', target: 'ECHO', token: 'user', methods: ['GET'] },
    ],
  });
  host = new URL(stack.gw.url).host;
  cookie = (await loginThroughGateway(stack.gw.url)).cookieHeader;
});
afterAll(async () => {
  await stack?.close();
});

function head(method: string, path: string, lines: string[]): string {
  return [`${method} ${path} HTTP/1.1`, `Host: ${host}`, ...lines, '', ''].join('\r\n');
}

function problemCode(res: RawResponse): unknown {
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  return (JSON.parse(res.text) as { code?: unknown }).code;
}

/** Opens a connection, sends `requestHead`, and runs `exchange` on it; the connection is closed afterwards. */
async function withConnection<T>(requestHead: string, exchange: (conn: RawConnection) => Promise<T>): Promise<T> {
  const conn = await RawConnection.open(stack.gw.url);
  try {
    conn.write(requestHead);
    return await exchange(conn);
  } finally {
    conn.close();
  }
}

describe('Expect: 100-continue with a valid session', () => {
  test.each([
    ['Content-Length', 'length'],
    ['Transfer-Encoding: chunked', 'chunked'],
  ] as const)('%s: 100 Continue, then the body, then the answer; the upstream never sees Expect', async (_name, framing) => {
    const path = `/api/echo/upload-${randomUUID()}`;
    const body = 'b'.repeat(1000);
    const framingLine = framing === 'length' ? `Content-Length: ${body.length}` : 'Transfer-Encoding: chunked';
    const lines = [`Cookie: ${cookie}`, 'x-csrf: 1', 'Content-Type: application/octet-stream', 'Expect: 100-continue', framingLine];
    await withConnection(head('POST', path, lines), async (conn) => {
      const interim = await conn.readResponse({ timeoutMs: ANSWER_WAIT_MS });
      expect(interim.status).toBe(100);
      expect(interim.head).toMatch(/^HTTP\/1\.1 100 Continue/);
      conn.write(framing === 'length' ? body : chunked(body, 4));
      const res = await conn.readResponse({ timeoutMs: ANSWER_WAIT_MS });
      expect(res.status).toBe(200);
      const reply = JSON.parse(res.text) as EchoReply;
      expect(reply.bodyLength).toBe(body.length);
      expect(reply.headers.expect).toBeUndefined();
    });
    const seen = stack.echo.requests.filter((r) => r.url === path);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.headers.expect).toBeUndefined();
  });

  test("the route's timeoutMs still applies: 504 upstream_timeout, promptly", async () => {
    const path = `/api/slow/__slow?ms=${UPSTREAM_DELAY_MS}`;
    const body = 'x'.repeat(10);
    const lines = [`Cookie: ${cookie}`, 'x-csrf: 1', 'Expect: 100-continue', `Content-Length: ${body.length}`];
    const res = await withConnection(head('POST', path, lines), async (conn) => {
      let answer = await conn.readResponse({ timeoutMs: ANSWER_WAIT_MS });
      if (answer.status === 100) {
        conn.write(body);
        // Well before the upstream's answer: only the route timeout can produce a response in time.
        answer = await conn.readResponse({ timeoutMs: ANSWER_WAIT_MS });
      }
      return answer;
    });
    expect(res.status).toBe(504);
    expect(problemCode(res)).toBe('upstream_timeout');
  });
});

describe('Expect: 100-continue never skips the checks that come first', () => {
  test.each([
    ['no session', 'POST', '/api/echo', ['x-csrf: 1'], 401, 'not_authenticated'],
    ['no CSRF header', 'POST', '/api/echo', ['COOKIE'], 403, undefined],
    ['a cross-site Origin', 'POST', '/api/echo', ['COOKIE', 'x-csrf: 1', 'Origin: https://evil.example'], 403, undefined],
    ['a method the route does not allow', 'POST', '/api/getonly', ['COOKIE', 'x-csrf: 1'], 405, 'method_not_allowed'],
  ] as const)('%s: the refusal is the first answer, with no 100 Continue before it, and nothing reaches the upstream', async (_name, method, prefix, extra, status, code) => {
    const path = `${prefix}/refused-${randomUUID()}`;
    const lines = [...extra.map((line) => (line === 'COOKIE' ? `Cookie: ${cookie}` : line)), 'Expect: 100-continue', 'Content-Length: 10'];
    // The body is never sent: a gateway that answered 100 Continue would be waiting for it now.
    const res = await withConnection(head(method, path, lines), (conn) => conn.readResponse({ timeoutMs: ANSWER_WAIT_MS }));
    expect(res.status).toBe(status);
    if (code !== undefined) expect(problemCode(res)).toBe(code);
    expect(stack.echo.requests.filter((r) => r.url === path)).toEqual([]);
  });

  test('an unknown expectation: 417, and nothing reaches the upstream', async () => {
    const path = `/api/echo/expect-${randomUUID()}`;
    const lines = [`Cookie: ${cookie}`, 'x-csrf: 1', 'Expect: something-else', 'Content-Length: 10'];
    const res = await withConnection(head('POST', path, lines), (conn) => conn.readResponse({ timeoutMs: ANSWER_WAIT_MS }));
    expect(res.status).toBe(417);
    expect(stack.echo.requests.filter((r) => r.url === path)).toEqual([]);
  });
});
