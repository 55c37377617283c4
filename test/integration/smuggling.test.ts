import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { loginThroughGateway } from '../support/browser-flow.ts';
import type { EchoReply, EchoRequest } from '../support/echo.ts';
import { chunked, rawExchange, RawConnection, type RawResponse } from '../support/raw-socket.ts';
import { startStack, type Stack } from '../support/stack.ts';

/**
 * Request smuggling through the proxy, over raw sockets. The upstream must see exactly one
 * request per browser request, framed by the gateway: `Connection` may name hop-by-hop
 * headers, but never Content-Length, Transfer-Encoding, Host or a header the gateway sets
 * (DESIGN.md, Proxying). A body that is itself an HTTP request must stay a body.
 */

let stack: Stack;
let cookie: string;
let accessToken: string;
let host: string;

beforeAll(async () => {
  stack = await startStack({
    routes: [{ prefix: '/api/echo', target: 'ECHO', token: 'user', userHeaders: ['email'], headers: { 'X-Route-Static': 'from-route' } }],
  });
  host = new URL(stack.gw.url).host;
  cookie = (await loginThroughGateway(stack.gw.url)).cookieHeader;
  accessToken = lastAccessToken();
});
afterAll(async () => {
  await stack?.close();
});

function lastAccessToken(): string {
  return (stack.tokenResponses.at(-1) as Record<string, string>).access_token as string;
}

/** A complete second request, hidden in the body: it would reach the upstream with the attacker's identity. */
function smuggled(id: string): string {
  return `GET /admin?case=${id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer attacker\r\nX-User-Sub: admin\r\n\r\n`;
}

/** What the upstream received for this case: its own path, and any smuggled `/admin` request. */
function seenUpstream(path: string, id: string): { own: EchoRequest[]; smuggledIn: EchoRequest[] } {
  return {
    own: stack.echo.requests.filter((r) => r.url === path),
    smuggledIn: stack.echo.requests.filter((r) => r.url.startsWith('/admin') && r.url.includes(id)),
  };
}

function head(method: string, path: string, lines: string[], sessionCookie = cookie): string {
  return [`${method} ${path} HTTP/1.1`, `Host: ${host}`, `Cookie: ${sessionCookie}`, 'x-csrf: 1', ...lines, '', ''].join('\r\n');
}

function reply(res: RawResponse): EchoReply {
  return JSON.parse(res.text) as EchoReply;
}

type Variant = { name: string; connection: string; framing: 'length' | 'chunked' };

const VARIANTS: Variant[] = [
  { name: 'Connection: content-length', connection: 'content-length', framing: 'length' },
  { name: 'Connection: transfer-encoding', connection: 'transfer-encoding', framing: 'chunked' },
  { name: 'Connection: close, content-length', connection: 'close, content-length', framing: 'length' },
  { name: 'Connection: keep-alive, transfer-encoding', connection: 'keep-alive, transfer-encoding', framing: 'chunked' },
  { name: 'Connection: host', connection: 'host', framing: 'length' },
  { name: 'Connection: authorization, x-forwarded-for, x-request-id', connection: 'authorization, x-forwarded-for, x-request-id', framing: 'length' },
  {
    name: "Connection naming the gateway's other headers",
    connection: 'x-forwarded-proto, x-forwarded-host, x-user-sub, x-user-email, x-route-static',
    framing: 'chunked',
  },
];
const METHODS = ['GET', 'HEAD', 'DELETE', 'OPTIONS', 'POST'];
const MATRIX = METHODS.flatMap((method) => VARIANTS.map((variant): [string, string, Variant] => [method, variant.name, variant]));

describe('Connection cannot unframe a request or strip what the gateway sets', () => {
  test.each(MATRIX)('%s with %s: one upstream request, body intact, gateway identity', async (method, _name, variant) => {
    const id = randomUUID();
    const path = `/api/echo/smuggle-${method}-${id}`;
    const body = smuggled(id);
    const framing = variant.framing === 'length' ? [`Content-Length: ${Buffer.byteLength(body)}`] : ['Transfer-Encoding: chunked'];
    const request = head(method, path, [`Connection: ${variant.connection}`, ...framing]) + (variant.framing === 'length' ? body : chunked(body, 3));

    const res = await rawExchange(stack.gw.url, request, { head: method === 'HEAD' });
    expect(res.status).toBe(200);

    const { own, smuggledIn } = seenUpstream(path, id);
    expect(smuggledIn).toEqual([]);
    expect(own).toHaveLength(1);
    const upstream = own[0] as EchoRequest;
    expect(upstream.method).toBe(method);
    // Every upstream request with a body is framed explicitly.
    const framed = upstream.headers['content-length'] === String(Buffer.byteLength(body)) || upstream.headers['transfer-encoding'] === 'chunked';
    expect(framed).toBe(true);
    expect(upstream.headers.authorization).toBe(`Bearer ${accessToken}`);
    expect(upstream.headers.host).toBe(new URL(stack.echo.url).host);
    expect(upstream.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(upstream.headers['x-forwarded-proto']).toBe('http');
    expect(upstream.headers['x-forwarded-host']).toBe(host);
    expect(upstream.headers['x-request-id']).toBe(res.headers['x-request-id']);
    expect(upstream.headers['x-user-sub']).toBe('alice');
    expect(upstream.headers['x-user-email']).toBe('alice@example.test');
    expect(upstream.headers['x-route-static']).toBe('from-route');

    if (method !== 'HEAD') {
      const echoed = reply(res);
      expect(echoed.url).toBe(path);
      expect(echoed.bodyLength).toBe(Buffer.byteLength(body));
      expect(echoed.headers.authorization).toBe(`Bearer ${accessToken}`);
    }
  });

  test('other names in Connection are still hop-by-hop: dropped', async () => {
    const path = `/api/echo/hop-${randomUUID()}`;
    const res = await rawExchange(stack.gw.url, head('GET', path, ['Connection: x-foo', 'X-Foo: 1']));
    expect(res.status).toBe(200);
    expect(reply(res).headers['x-foo']).toBeUndefined();

    const res2 = await rawExchange(stack.gw.url, head('POST', path, ['Connection: keep-alive, X-Bar, x-baz', 'X-Bar: 2', 'X-Baz: 3', 'Content-Length: 5']) + 'hello');
    expect(res2.status).toBe(200);
    const echoed = reply(res2);
    expect(echoed.headers['x-bar']).toBeUndefined();
    expect(echoed.headers['x-baz']).toBeUndefined();
    expect(echoed.bodyLength).toBe(5);
  });
});

describe('no response desync on the kept-alive upstream connection', () => {
  test('after smuggling attempts, a second user on another connection gets its own responses', async () => {
    // Attempts on one kept-alive browser connection, on GET and DELETE (the methods a client sends unframed by default).
    const attacker = await RawConnection.open(stack.gw.url);
    try {
      for (const method of ['GET', 'DELETE', 'GET']) {
        const id = randomUUID();
        const body = smuggled(id);
        attacker.write(head(method, `/api/echo/attack-${id}`, ['Connection: content-length', `Content-Length: ${Buffer.byteLength(body)}`]) + body);
        expect((await attacker.readResponse()).status).toBe(200);
      }
    } finally {
      attacker.close();
    }

    const second = await loginThroughGateway(stack.gw.url);
    const secondToken = lastAccessToken();
    expect(secondToken).not.toBe(accessToken);
    const victim = await RawConnection.open(stack.gw.url);
    try {
      for (let i = 0; i < 4; i++) {
        const path = `/api/echo/victim-${i}-${randomUUID()}`;
        victim.write(head('GET', path, [`X-Request-Id: victim-${i}`], second.cookieHeader));
        const res = await victim.readResponse();
        expect(res.status).toBe(200);
        const echoed = reply(res);
        expect(echoed.url).toBe(path);
        expect(echoed.headers.authorization).toBe(`Bearer ${secondToken}`);
        expect(echoed.headers['x-request-id']).toBe(res.headers['x-request-id']);
      }
    } finally {
      victim.close();
    }
  });
});

describe('ambiguous framing is refused with 400 and never forwarded', () => {
  const body = 'hello';
  const cases: Array<[string, string[], string]> = [
    ['Content-Length and Transfer-Encoding: chunked', [`Content-Length: ${body.length}`, 'Transfer-Encoding: chunked'], chunked(body)],
    ['Transfer-Encoding: chunked and Content-Length', ['Transfer-Encoding: chunked', `Content-Length: ${body.length}`], chunked(body)],
    ['two different Content-Length values', ['Content-Length: 5', 'Content-Length: 6'], `${body}!`],
    ['a Content-Length list with different values', ['Content-Length: 5, 6'], `${body}!`],
    ['Transfer-Encoding: gzip, chunked', ['Transfer-Encoding: gzip, chunked'], chunked(body)],
    ['Transfer-Encoding: chunked, identity', ['Transfer-Encoding: chunked, identity'], chunked(body)],
    ['Transfer-Encoding: identity', ['Transfer-Encoding: identity'], body],
    ['Transfer-Encoding: xchunked', ['Transfer-Encoding: xchunked'], chunked(body)],
  ];
  test.each(cases)('%s', async (_name, lines, payload) => {
    const path = `/api/echo/ambiguous-${randomUUID()}`;
    const res = await rawExchange(stack.gw.url, head('POST', path, lines) + payload);
    expect(res.status).toBe(400);
    expect(stack.echo.requests.filter((r) => r.url === path)).toEqual([]);
  });
});
