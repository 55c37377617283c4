import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { ConfigError } from '../../src/config/load.ts';
import { loginThroughGateway } from '../support/browser-flow.ts';
import type { EchoReply } from '../support/echo.ts';
import { RawConnection, rawExchange, waitUntil, type RawResponse } from '../support/raw-socket.ts';
import { loadConfigWithRoutes } from '../support/routes-config.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { startWsEcho, type WsEcho } from '../support/websocket.ts';

/**
 * No browser header can claim an identity, an address, a URL or a method that the gateway
 * did not authorise (DESIGN.md, Proxying). Sent over raw sockets, so that odd casing,
 * repeated lines and underscores reach the gateway exactly as an attacker writes them.
 */

/** Removed by default on every route; `passHeaders` may name them. */
const CLIENT_ADDRESS = [
  'X-Real-IP',
  'X-Client-IP',
  'True-Client-IP',
  'CF-Connecting-IP',
  'Forwarded-For',
  'X-Cluster-Client-IP',
  'Fastly-Client-IP',
  'X-Originating-IP',
  'X-Remote-IP',
  'X-Remote-Addr',
  'Client-IP',
  'Forwarded',
  'X-Forwarded-Port',
  'X-Forwarded-Server',
];
const URL_OVERRIDES = [
  'X-Original-URL',
  'X-Rewrite-URL',
  'X-Forwarded-Uri',
  'X-Forwarded-Path',
  'X-Forwarded-Prefix',
  'X-Original-URI',
  'X-Original-Host',
  'X-Host',
  'X-Forwarded-Scheme',
  'X-Forwarded-Ssl',
  'X-Url-Scheme',
  'Front-End-Https',
];
const METHOD_OVERRIDES = ['X-HTTP-Method-Override', 'X-HTTP-Method', 'X-Method-Override'];
const DROPPED_BY_DEFAULT = [...CLIENT_ADDRESS, ...URL_OVERRIDES, 'Proxy', ...METHOD_OVERRIDES];

/** A plausible attacker value for each kind of header. */
function hostileValue(name: string): string {
  const lower = name.toLowerCase();
  if (lower === 'proxy') return 'http://evil.example:8080';
  if (lower === 'forwarded') return 'for=6.6.6.6;proto=https;host=evil.example';
  if (METHOD_OVERRIDES.some((m) => m.toLowerCase() === lower)) return 'DELETE';
  if (/url|uri|path|prefix/.test(lower)) return '/admin';
  if (/host|server/.test(lower)) return 'evil.example';
  if (/scheme/.test(lower)) return 'https';
  if (/ssl|https/.test(lower)) return 'on';
  if (/port/.test(lower)) return '443';
  return '6.6.6.6';
}

/** `X-Real-IP` → `x-ReAl-Ip`: header names are case-insensitive, and so must the filter be. */
function oddCase(name: string): string {
  return [...name].map((c, i) => (i % 2 === 0 ? c.toLowerCase() : c.toUpperCase())).join('');
}

/** The header as written, in lower case and in odd case: three lines of one header. */
function threeWays(name: string, value: string): string[] {
  return [`${name}: ${value}`, `${name.toLowerCase()}: ${value}`, `${oddCase(name)}: ${value}`];
}

function request(method: string, path: string, host: string, lines: string[]): string {
  return [`${method} ${path} HTTP/1.1`, `Host: ${host}`, 'x-csrf: 1', ...lines, '', ''].join('\r\n');
}

function echoed(res: RawResponse): EchoReply {
  expect(res.status).toBe(200);
  return JSON.parse(res.text) as EchoReply;
}

describe('on a default route', () => {
  let stack: Stack;
  let ws: WsEcho;
  let host: string;
  let cookie: string;
  let accessToken: string;

  beforeAll(async () => {
    ws = await startWsEcho();
    stack = await startStack({
      routes: [
        { prefix: '/api/echo', target: 'ECHO', token: 'user', userHeaders: ['email'] },
        { prefix: '/api/getonly', target: 'ECHO', token: 'none', methods: ['GET'] },
        { prefix: '/api/ws', target: ws.url, token: 'user', websocket: true },
      ],
    });
    host = new URL(stack.gw.url).host;
    cookie = (await loginThroughGateway(stack.gw.url)).cookieHeader;
    accessToken = (stack.tokenResponses.at(-1) as Record<string, string>).access_token as string;
  });
  afterAll(async () => {
    await stack?.close();
    await ws?.close();
  });

  const get = (path: string, lines: string[]): Promise<RawResponse> => rawExchange(stack.gw.url, request('GET', path, host, [`Cookie: ${cookie}`, ...lines]));

  test('header names with an underscore are dropped (CGI, WSGI, Rack and PHP read X_User_Sub as X-User-Sub)', async () => {
    const reply = echoed(
      await get('/api/echo/underscore', [
        'X_User_Sub: admin',
        'X_Forwarded_For: 1.2.3.4',
        'X_Real_IP: 6.6.6.6',
        'Authorization_: Bearer attacker',
        'x_custom: 1',
        'X-User_Email: evil@example.test',
        '_: x',
      ]),
    );
    expect(Object.keys(reply.headers).filter((name) => name.includes('_'))).toEqual([]);
    expect(reply.headers['x-user-sub']).toBe('alice');
    expect(reply.headers['x-user-email']).toBe('alice@example.test');
    expect(reply.headers.authorization).toBe(`Bearer ${accessToken}`);
    expect(reply.headers['x-forwarded-for']).toBe('127.0.0.1');
  });

  test.each(DROPPED_BY_DEFAULT)('%s is dropped, whatever its casing and however often it is sent', async (name) => {
    const value = hostileValue(name);
    const reply = echoed(await get(`/api/echo/drop-${name}`, threeWays(name, value)));
    expect(reply.headers[name.toLowerCase()]).toBeUndefined();
    // Nothing the browser sent under this name turns up under another.
    expect(JSON.stringify(reply.headers)).not.toContain('evil.example');
    if (value === '6.6.6.6') expect(JSON.stringify(reply.headers)).not.toContain('6.6.6.6');
  });

  test('all of them at once are dropped, while ordinary headers pass', async () => {
    const lines = DROPPED_BY_DEFAULT.flatMap((name) => threeWays(name, hostileValue(name)));
    const reply = echoed(await get('/api/echo/all', [...lines, 'Accept: application/json', 'Content-Type: application/json', 'X-Custom-Header: kept', 'Accept-Language: fr']));
    for (const name of DROPPED_BY_DEFAULT) expect([name, reply.headers[name.toLowerCase()]]).toEqual([name, undefined]);
    expect(reply.headers.accept).toBe('application/json');
    expect(reply.headers['content-type']).toBe('application/json');
    expect(reply.headers['x-custom-header']).toBe('kept');
    expect(reply.headers['accept-language']).toBe('fr');
  });

  test("the gateway's own headers are the gateway's, never the browser's", async () => {
    const res = await get('/api/echo/own', [
      'Cookie: evil=1',
      'Authorization: Bearer attacker',
      'authorization: Basic YWRtaW46YWRtaW4=',
      'X-Forwarded-For: 6.6.6.6',
      'X-Forwarded-Proto: https',
      'X-Forwarded-Host: evil.example',
      'X-User-Sub: admin',
      'x-user-sub: root',
      'X-User-Role: admin',
      'X-User-Email: evil@example.test',
      'X-Request-Id: attacker-1',
      'x-request-id: attacker-2',
      // A proof an upstream checking DPoP would take for the gateway's; twice, so that Node would join them.
      'DPoP: forged.header.proof',
      'dpop: forged.second.proof',
    ]);
    const reply = echoed(res);
    expect(reply.headers.cookie).toBeUndefined();
    expect(reply.headers.authorization).toBe(`Bearer ${accessToken}`);
    expect(reply.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(reply.headers['x-forwarded-proto']).toBe('http');
    expect(reply.headers['x-forwarded-host']).toBe(host);
    expect(reply.headers['x-user-sub']).toBe('alice');
    expect(reply.headers['x-user-email']).toBe('alice@example.test');
    expect(reply.headers['x-user-role']).toBeUndefined();
    // A Bearer route: the gateway sends no proof, and the browser's never pass.
    expect(reply.headers.dpop).toBeUndefined();
    // The upstream's request id is the one the gateway answers with, not the browser's pair.
    expect(reply.headers['x-request-id']).toBe(res.headers['x-request-id']);
    expect(reply.headers['x-request-id']).not.toContain('attacker');
  });

  test('a method override cannot turn an allowed GET into a DELETE the route does not allow', async () => {
    const before = stack.echo.requests.length;
    const reply = echoed(
      await rawExchange(stack.gw.url, request('GET', '/api/getonly/item/1', host, [...threeWays('X-HTTP-Method-Override', 'DELETE'), 'X-HTTP-Method: DELETE', 'X-Method-Override: DELETE'])),
    );
    expect(reply.method).toBe('GET');
    for (const name of METHOD_OVERRIDES) expect([name, reply.headers[name.toLowerCase()]]).toEqual([name, undefined]);
    expect(stack.echo.requests.slice(before).map((r) => r.method)).toEqual(['GET']);
    // And the real DELETE is refused before the upstream.
    const refused = await rawExchange(stack.gw.url, request('DELETE', '/api/getonly/item/1', host, []));
    expect(refused.status).toBe(405);
    expect(stack.echo.requests.length).toBe(before + 1);
  });

  test('X-Forwarded-For without BFF_TRUST_PROXY is the peer address only', async () => {
    const reply = echoed(await get('/api/echo/xff', ['X-Forwarded-For: 6.6.6.6', 'X-Forwarded-For: 7.7.7.7']));
    expect(reply.headers['x-forwarded-for']).toBe('127.0.0.1');
  });

  test('the same hygiene applies to a WebSocket handshake', async () => {
    const before = ws.handshakes.length;
    const conn = await RawConnection.open(stack.gw.url);
    try {
      conn.write(
        [
          'GET /api/ws/chat HTTP/1.1',
          `Host: ${host}`,
          'Connection: Upgrade',
          'Upgrade: websocket',
          'Sec-WebSocket-Version: 13',
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
          `Origin: ${stack.gw.url}`,
          `Cookie: ${cookie}`,
          'X_User_Sub: admin',
          'X_Forwarded_For: 1.2.3.4',
          ...threeWays('X-Real-IP', '6.6.6.6'),
          'X-Original-URL: /admin',
          'X-Rewrite-URL: /admin',
          'X-HTTP-Method-Override: DELETE',
          'Proxy: http://evil.example:8080',
          'X-Forwarded-Host: evil.example',
          'X-User-Sub: admin',
          'Authorization: Bearer attacker',
          '',
          '',
        ].join('\r\n'),
      );
      const res = await conn.readResponse();
      expect(res.status).toBe(101);
    } finally {
      conn.close();
    }
    // The upstream records the handshake before it answers 101, which the gateway relays.
    expect(await waitUntil(() => ws.handshakes.length > before, 2000)).toBe(true);
    const handshake = ws.handshakes[before] as IncomingHttpHeaders;
    expect(Object.keys(handshake).filter((name) => name.includes('_'))).toEqual([]);
    for (const name of ['x-real-ip', 'x-original-url', 'x-rewrite-url', 'x-http-method-override', 'proxy', 'cookie']) {
      expect([name, handshake[name]]).toEqual([name, undefined]);
    }
    expect(handshake.authorization).toBe(`Bearer ${accessToken}`);
    expect(handshake['x-forwarded-for']).toBe('127.0.0.1');
    expect(handshake['x-forwarded-host']).toBe(host);
    expect(handshake['x-user-sub']).toBeUndefined();
  });
});

describe('a route whose passHeaders names some of them', () => {
  let stack: Stack;
  let host: string;

  beforeAll(async () => {
    const routes = [
      { prefix: '/api/pass', target: 'ECHO', token: 'none', passHeaders: ['X-Real-IP', 'X-HTTP-Method-Override'] },
      { prefix: '/api/other', target: 'ECHO', token: 'none' },
    ];
    // Refused routes fail here, before startStack would leave an IdP and an echo server running.
    loadConfigWithRoutes(routes);
    stack = await startStack({ routes });
    host = new URL(stack.gw.url).host;
  });
  afterAll(async () => {
    await stack?.close();
  });

  test('forwards exactly those two and still drops the rest', async () => {
    const lines = [
      ...DROPPED_BY_DEFAULT.filter((name) => name !== 'X-Real-IP' && name !== 'X-HTTP-Method-Override').map((name) => `${name}: ${hostileValue(name)}`),
      'x-real-ip: 203.0.113.7',
      'X-HTTP-Method-Override: PATCH',
      'X_Real_IP: 6.6.6.6',
      'X_HTTP_Method_Override: DELETE',
    ];
    const reply = echoed(await rawExchange(stack.gw.url, request('GET', '/api/pass/x', host, lines)));
    expect(reply.headers['x-real-ip']).toBe('203.0.113.7');
    expect(reply.headers['x-http-method-override']).toBe('PATCH');
    for (const name of DROPPED_BY_DEFAULT) {
      if (name !== 'X-Real-IP' && name !== 'X-HTTP-Method-Override') expect([name, reply.headers[name.toLowerCase()]]).toEqual([name, undefined]);
    }
    expect(Object.keys(reply.headers).filter((name) => name.includes('_'))).toEqual([]);
  });

  test('another route of the same gateway still drops them', async () => {
    const reply = echoed(await rawExchange(stack.gw.url, request('GET', '/api/other/x', host, ['X-Real-IP: 203.0.113.7', 'X-HTTP-Method-Override: PATCH'])));
    expect(reply.headers['x-real-ip']).toBeUndefined();
    expect(reply.headers['x-http-method-override']).toBeUndefined();
  });
});

describe('passHeaders in the routes file', () => {
  function configError(routes: unknown[]): ConfigError {
    let caught: unknown;
    try {
      loadConfigWithRoutes(routes);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    return caught as ConfigError;
  }

  test('headers removed by default may be named', () => {
    expect(() => loadConfigWithRoutes([{ prefix: '/api/legacy', target: 'http://legacy:8080', token: 'user', passHeaders: ['X-Real-IP', 'X-HTTP-Method-Override'] }])).not.toThrow();
  });

  test.each(['Authorization', 'Cookie', 'X-Forwarded-For', 'Host', 'Content-Length', 'Transfer-Encoding', 'Connection', 'X-Request-Id', 'X-User-Sub'])(
    'a gateway-owned header (%s) is refused at start-up, by route prefix and header name',
    (header) => {
      const { problems } = configError([
        { prefix: '/api/fine', target: 'http://fine:8080', token: 'user', passHeaders: ['X-Real-IP'] },
        { prefix: '/api/legacy', target: 'http://legacy:8080', token: 'user', passHeaders: ['X-Real-IP', header] },
      ]);
      expect(problems).toHaveLength(1);
      expect(problems[0]).toContain('/api/legacy');
      expect((problems[0] as string).toLowerCase()).toContain(header.toLowerCase());
    },
  );
});

describe('X-Forwarded-For keeps the incoming chain only from a trusted proxy', () => {
  async function forwardedFor(trustProxy: string): Promise<string | string[] | undefined> {
    const stack = await startStack({ routes: [{ prefix: '/api/echo', target: 'ECHO', token: 'none' }], env: { BFF_TRUST_PROXY: trustProxy } });
    try {
      const res = await rawExchange(stack.gw.url, request('GET', `/api/echo/xff-${randomUUID()}`, new URL(stack.gw.url).host, ['X-Forwarded-For: 6.6.6.6']));
      return echoed(res).headers['x-forwarded-for'];
    } finally {
      await stack.close();
    }
  }

  test('BFF_TRUST_PROXY=10.0.0.0/8, the direct peer 127.0.0.1 is not trusted: the chain is dropped', async () => {
    expect(await forwardedFor('10.0.0.0/8')).toBe('127.0.0.1');
  });

  test('BFF_TRUST_PROXY=loopback, the direct peer is trusted: the chain is kept and the peer appended', async () => {
    expect(await forwardedFor('loopback')).toBe('6.6.6.6, 127.0.0.1');
  });
});
