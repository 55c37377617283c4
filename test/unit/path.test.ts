import { describe, expect, test } from '@jest/globals';
import type { RouteConfig } from '../../src/config/types.ts';
import { normalisePath } from '../../src/proxy/path.ts';
import { RouteTable } from '../../src/proxy/route-table.ts';

/** `string`: the exact normalised path expected; `null`: the path must be refused. */
const CASES: ReadonlyArray<readonly [string, string | null]> = [
  // benign
  ['/', '/'],
  ['/api', '/api'],
  ['/api/orders', '/api/orders'],
  ['/api/orders/1', '/api/orders/1'],
  ['/api/orders/', '/api/orders/'],
  ['/api/orders/./', '/api/orders/'],
  ['/api//orders', '/api/orders'],
  ['//api///orders//1', '/api/orders/1'],
  ['//', '/'],
  ['/api/./orders', '/api/orders'],
  ['/api/orders/../catalog', '/api/catalog'],
  ['/api/orders/1/../../catalog/2', '/api/catalog/2'],
  ['/api/a;b=c', '/api/a;b=c'],
  ['/api/100%25', '/api/100%25'],
  // unreserved escapes decoded, others upper-cased
  ['/api/%61', '/api/a'],
  ['/api/%6Frders/%31', '/api/orders/1'],
  ['/api/%7e%2D%5f', '/api/~-_'],
  ['/api/caf%c3%a9', '/api/caf%C3%A9'],
  ['/api/a%20b', '/api/a%20b'],
  ['/api/%2a%3a', '/api/%2A%3A'],
  // encoded dot segments are dot segments
  ['/api/%2e/orders', '/api/orders'],
  ['/api/%2E/orders', '/api/orders'],
  ['/api/orders/%2e%2e/catalog', '/api/catalog'],
  ['/api/orders/%2E%2E/catalog', '/api/catalog'],
  ['/api/orders/.%2e/catalog', '/api/catalog'],
  ['/api/orders/%2e./catalog', '/api/catalog'],
  ['/api/orders/%2e%2e/%2e%2e/auth', '/auth'],
  ['/api/orders/../../auth/user', '/auth/user'],
  // a final dot segment names a directory: the trailing slash stays
  ['/api/orders/.', '/api/orders/'],
  ['/api/orders/x/..', '/api/orders/'],
  ['/api/orders/x/%2e%2e', '/api/orders/'],
  // dot segments with servlet path parameters climb in Tomcat/Jetty/Spring
  ['/api/orders/..;/admin', null],
  ['/api/orders/%2e%2e;x=1/admin', null],
  ['/api/orders/.;/x', null],
  ['/api/orders/1;v=2/x', '/api/orders/1;v=2/x'],
  // climbing above the root
  ['/..', null],
  ['/../api/orders', null],
  ['/api/../../etc/passwd', null],
  ['/%2e%2e/etc/passwd', null],
  ['/api/%2e%2e/%2E%2E/%2e./x', null],
  // encoded slashes and backslashes
  ['/api/orders%2f1', null],
  ['/api/orders%2F1', null],
  ['/api/orders/..%2f..%2fauth/user', null],
  ['/api/orders/..%2F..%2Fauth/user', null],
  ['/api/orders/%2e%2e%2fauth', null],
  ['/api/orders\\..\\auth', null],
  ['/api\\orders', null],
  ['/api/orders%5c..%5cauth', null],
  ['/api/orders%5C1', null],
  // double encoding of dot, slash, backslash, NUL
  ['/api/%252e%252e/auth', null],
  ['/api/%252E', null],
  ['/api/orders%252f1', null],
  ['/api/orders%252F..%252Fauth', null],
  ['/api/orders%255c1', null],
  ['/api/orders%2500', null],
  ['/api/%25%32%65%25%32%65/auth', null],
  // NUL and control characters, raw or encoded
  ['/api/orders%00', null],
  ['/api/orders/%00/x', null],
  ['/api/orders\u0000', null],
  ['/api/orders%0a', null],
  ['/api/orders%0D%0ASet-Cookie:x', null],
  ['/api/orders\n', null],
  ['/api/or\tders', null],
  ['/api/orders%09', null],
  ['/api/orders%1f', null],
  ['/api/orders%7F', null],
  ['/api/orders\u007f', null],
  // malformed escapes
  ['/api/%zz', null],
  ['/api/orders%2', null],
  ['/api/orders%', null],
  ['/api/%%32%65', null],
  ['/api/%u002e%u002e/auth', null],
  ['/api/%g0', null],
  // not a path
  ['', null],
  ['api/orders', null],
  ['*', null],
  ['http://evil.example/api/orders', null],
];

describe('normalisePath', () => {
  test('the table is large enough to mean something', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(30);
    expect(CASES.filter(([, expected]) => expected === null).length).toBeGreaterThanOrEqual(20);
  });

  test.each(CASES.filter(([, expected]) => expected !== null))('%j normalises to %j', (raw, expected) => {
    expect(normalisePath(raw)).toMatchObject({ ok: true, path: expected });
  });

  test.each(CASES.filter(([, expected]) => expected === null).map(([raw]) => [raw]))('%j is refused', (raw) => {
    const result = normalisePath(raw);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toEqual(expect.any(String));
  });

  test('paths up to 4096 characters pass, longer ones are refused', () => {
    const atLimit = '/api/' + 'a'.repeat(4096 - 5);
    expect(atLimit).toHaveLength(4096);
    expect(normalisePath(atLimit)).toMatchObject({ ok: true, path: atLimit });
    expect(normalisePath(atLimit + 'a')).toEqual({ ok: false, reason: expect.any(String) });
    expect(normalisePath('/api/' + 'a/'.repeat(50_000)).ok).toBe(false);
  });

  test('normalising is idempotent on every accepted path', () => {
    for (const [raw, expected] of CASES) {
      if (expected === null) continue;
      expect([raw, normalisePath(expected)]).toMatchObject([raw, { ok: true, path: expected }]);
    }
  });
});

function route(prefix: string, rewrite?: string): RouteConfig {
  return { prefix, target: new URL('http://upstream:8080'), token: 'user', websocket: false, timeoutMs: 30_000, maxConnections: 256, ...(rewrite !== undefined ? { rewrite } : {}) };
}

describe('RouteTable', () => {
  test('matches whole path segments only', () => {
    const table = new RouteTable([route('/api/orders')]);
    expect(table.match('/api/orders')?.route.prefix).toBe('/api/orders');
    expect(table.match('/api/orders/1')?.route.prefix).toBe('/api/orders');
    expect(table.match('/api/orders/')?.route.prefix).toBe('/api/orders');
    expect(table.match('/api/ordersX')).toBeUndefined();
    expect(table.match('/api/orders-archive/1')).toBeUndefined();
    expect(table.match('/api/order')).toBeUndefined();
    expect(table.match('/api')).toBeUndefined();
    expect(table.match('/auth/orders')).toBeUndefined();
  });

  test('the longest prefix wins, whatever the order of the routes', () => {
    const short = route('/api/orders');
    const long = route('/api/orders/archive');
    const root = route('/api');
    for (const routes of [
      [short, long, root],
      [root, long, short],
      [long, root, short],
    ]) {
      const table = new RouteTable(routes);
      expect(table.match('/api/orders/archive/7')?.route).toBe(long);
      expect(table.match('/api/orders/archive')?.route).toBe(long);
      expect(table.match('/api/orders/archived')?.route).toBe(short);
      expect(table.match('/api/orders/7')?.route).toBe(short);
      expect(table.match('/api/catalog')?.route).toBe(root);
      expect(table.match('/api')?.route).toBe(root);
    }
  });

  test('a rewrite replaces the prefix and keeps the rest of the path', () => {
    const table = new RouteTable([route('/api/orders', '/v1/orders')]);
    expect(table.match('/api/orders/1')?.upstreamPath).toBe('/v1/orders/1');
    expect(table.match('/api/orders')?.upstreamPath).toBe('/v1/orders');
    expect(table.match('/api/orders/')?.upstreamPath).toBe('/v1/orders/');
    expect(table.match('/api/orders/1/items/2')?.upstreamPath).toBe('/v1/orders/1/items/2');
  });

  test('a rewrite to / drops the prefix', () => {
    const table = new RouteTable([route('/api/x', '/')]);
    expect(table.match('/api/x')?.upstreamPath).toBe('/');
    expect(table.match('/api/x/')?.upstreamPath).toBe('/');
    expect(table.match('/api/x/y')?.upstreamPath).toBe('/y');
    expect(table.match('/api/x/y/z')?.upstreamPath).toBe('/y/z');
  });

  test('without a rewrite the path is forwarded unchanged', () => {
    const table = new RouteTable([route('/api/catalog')]);
    expect(table.match('/api/catalog')?.upstreamPath).toBe('/api/catalog');
    expect(table.match('/api/catalog/items/%C3%A9')?.upstreamPath).toBe('/api/catalog/items/%C3%A9');
    expect(table.match('/api/catalog/')?.upstreamPath).toBe('/api/catalog/');
  });

  test('no route matches: undefined', () => {
    expect(new RouteTable([]).match('/api/orders')).toBeUndefined();
  });

  test('a path that climbs into a sibling route keeps the route it names in `lexical`, so the proxy can refuse it', () => {
    const orders = route('/api/orders', '/v1/orders');
    const admin = route('/api/admin');
    const table = new RouteTable([orders, admin]);
    const normalised = normalisePath('/api/orders/%2e%2e/admin/users');
    expect(normalised).toEqual({ ok: true, path: '/api/admin/users', lexical: '/api/orders/../admin/users' });
    if (!normalised.ok) throw new Error('unreachable');
    expect(table.match(normalised.path)?.route).toBe(admin);
    expect(table.match(normalised.lexical)?.route).toBe(orders);
  });

  test('dot segments that stay inside the route keep the same route lexically', () => {
    const orders = route('/api/orders', '/v1/orders');
    const table = new RouteTable([orders]);
    const normalised = normalisePath('/api/orders/7/../8');
    if (!normalised.ok) throw new Error('refused');
    expect(normalised.path).toBe('/api/orders/8');
    expect(table.match(normalised.lexical)?.route).toBe(orders);
  });
});
