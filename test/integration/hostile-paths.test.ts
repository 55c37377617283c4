import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { loginThroughGateway } from '../support/browser-flow.ts';
import { rawGet } from '../support/raw-http.ts';
import { startStack, type Stack } from '../support/stack.ts';

/**
 * Hostile request paths, sent byte for byte, against a real gateway and a real echo
 * upstream: each is refused before anything reaches the upstream, or lands exactly on
 * the path the gateway authorised (normalised once, then rewritten; query untouched).
 */

let stack: Stack;
let cookie: string;

beforeAll(async () => {
  stack = await startStack({
    routes: [
      { prefix: '/api/orders', target: 'ECHO', token: 'user', rewrite: '/v1/orders' },
      { prefix: '/api/public', target: 'ECHO', token: 'none' },
      { prefix: '/api/admin', target: 'ECHO', token: 'user', rewrite: '/v1/admin', methods: ['GET'] },
    ],
  });
  cookie = (await loginThroughGateway(stack.gw.url)).cookieHeader;
});
afterAll(async () => {
  await stack?.close();
});

type Outcome =
  /** 400 problem+json `bad_path`; the upstream receives nothing. */
  | { refused: true }
  /** Not routed (404 problem+json with this code); the upstream receives nothing. */
  | { notFound: 'not_found' | 'route_not_found' }
  /** Proxied: exactly this path and query arrive at the upstream. */
  | { upstream: string };

const REFUSED = { refused: true } as const;
const MAX_PATH = 4096;
const longPath = (length: number): string => `/api/orders/${'a'.repeat(length - '/api/orders/'.length)}`;

const cases: Array<[string, string, Outcome]> = [
  // Encoded dot segments, either case, half-encoded.
  ['encoded dot segments to /auth', '/api/orders/%2e%2e/%2e%2e/auth/user', REFUSED],
  ['upper-case encoded dot segments', '/api/orders/%2E%2E/%2E%2E/auth/user', REFUSED],
  ['half-encoded dot segments (.%2e)', '/api/orders/.%2e/.%2e/auth/user', REFUSED],
  ['half-encoded dot segments (%2e.)', '/api/orders/%2e./%2e./auth/user', REFUSED],
  ['encoded dot segment right under /api', '/api/%2e%2e/auth/user', REFUSED],
  // Encoded slashes: ambiguous (one segment or two?), so refused wherever they are.
  ['..%2f climbing to /auth', '/api/orders/..%2f..%2fauth/user', REFUSED],
  ['..%2F climbing to /auth', '/api/orders/..%2F..%2Fauth/user', REFUSED],
  ['an encoded slash inside a segment', '/api/orders/1%2f2', REFUSED],
  ['an encoded slash after /api', '/api%2forders/1', REFUSED],
  // Backslashes, raw and encoded (some upstreams treat them as slashes).
  ['raw backslashes', '/api/orders/..\\..\\auth/user', REFUSED],
  ['encoded backslashes', '/api/orders/..%5c..%5cauth/user', REFUSED],
  ['an encoded backslash inside a segment', '/api/orders/1%5C2', REFUSED],
  // Double encoding: an upstream that decodes again must not find a dot segment or separator.
  ['double-encoded dot segments', '/api/orders/%252e%252e/%252e%252e/auth/user', REFUSED],
  ['double-encoded slashes', '/api/orders/..%252f..%252fauth/user', REFUSED],
  ['a double-encoded backslash', '/api/orders/%255c', REFUSED],
  ['a double-encoded NUL', '/api/orders/a%2500b', REFUSED],
  ['an encoded percent sign stays encoded, never decoded twice', '/api/orders/%2525', { upstream: '/v1/orders/%2525' }],
  // Dot segments that leave the prefix: out of /api, or into a sibling route.
  ['raw dot segments to /auth', '/api/orders/../../auth/user', REFUSED],
  ['climbing above the root', '/api/../../etc/passwd', REFUSED],
  ['climbing into a sibling route', '/api/orders/../admin/x', REFUSED],
  ['climbing into a sibling route, encoded', '/api/orders/%2e%2e/admin/x', REFUSED],
  ['climbing into a sibling route from deeper down', '/api/orders/1/../../admin/x', REFUSED],
  ['climbing from an anonymous route into a user route', '/api/public/../orders/1', REFUSED],
  ['climbing from the admin route into orders', '/api/admin/../orders/1', REFUSED],
  // NUL and control characters, encoded (the HTTP parser refuses them raw).
  ['an encoded NUL', '/api/orders/a%00b', REFUSED],
  ['an encoded NUL before an extension', '/api/orders/1%00.json', REFUSED],
  ['an encoded SOH', '/api/orders/%01', REFUSED],
  ['an encoded unit separator', '/api/orders/%1f', REFUSED],
  ['an encoded newline', '/api/orders/1%0d%0aX-Injected:%20yes', REFUSED],
  ['an encoded DEL', '/api/orders/%7f', REFUSED],
  // Length.
  ['a path one byte over 4096', longPath(MAX_PATH + 1), REFUSED],
  ['a path of 8 KiB', longPath(8192), REFUSED],
  ['a path of exactly 4096 bytes', longPath(MAX_PATH), { upstream: `/v1/orders/${'a'.repeat(MAX_PATH - '/api/orders/'.length)}` }],
  // Malformed percent-encoding.
  ['a non-hex escape', '/api/orders/%zz', REFUSED],
  ['a half escape', '/api/orders/%2', REFUSED],
  ['a trailing %', '/api/orders/1%', REFUSED],
  ['an escape with one hex digit', '/api/orders/%g0', REFUSED],
  // Normalised once, then matched and rewritten.
  ['duplicate slashes collapse', '/api//orders///1', { upstream: '/v1/orders/1' }],
  ['a single-dot segment before the prefix ends', '/api/./orders/1', { upstream: '/v1/orders/1' }],
  ['single-dot segments after the prefix', '/api/orders/./1/./lines', { upstream: '/v1/orders/1/lines' }],
  ['a dot-dot segment that stays inside the route', '/api/orders/1/../2', { upstream: '/v1/orders/2' }],
  ['leaving the route and coming back into it', '/api/orders/../orders/1', { upstream: '/v1/orders/1' }],
  ['an encoded unreserved character is decoded', '/api/orders/%61bc', { upstream: '/v1/orders/abc' }],
  ['encoded unreserved characters in either case', '/api/orders/%7e%41', { upstream: '/v1/orders/~A' }],
  ['other escapes are upper-cased, not decoded', '/api/orders/%c3%a9', { upstream: '/v1/orders/%C3%A9' }],
  ['an encoded ? stays in the path', '/api/orders/a%3fb', { upstream: '/v1/orders/a%3Fb' }],
  ['an encoded letter inside the prefix still matches the route', '/api/%6Frders/1', { upstream: '/v1/orders/1' }],
  ['three dots are a name, not a dot segment', '/api/orders/.../x', { upstream: '/v1/orders/.../x' }],
  // The query string is the browser's, byte for byte, whatever it contains.
  ['the query is kept byte for byte', '/api/orders/1?next=%2f..%2fauth/user&x=%zz&y=a%2Fb', { upstream: '/v1/orders/1?next=%2f..%2fauth/user&x=%zz&y=a%2Fb' }],
  ['repeated and dotted query parameters are kept', '/api/orders/1?a=1&a=2&b=../../x', { upstream: '/v1/orders/1?a=1&a=2&b=../../x' }],
  ["an encoded NUL in the query is the upstream's business", '/api/public/x?q=%00', { upstream: '/api/public/x?q=%00' }],
  // Matching is case-sensitive and on whole segments; only /api paths are proxied.
  ['an upper-case /API is not an API path', '/API/orders', { notFound: 'not_found' }],
  ['a mixed-case /Api is not an API path', '/Api/orders/1', { notFound: 'not_found' }],
  ['an encoded letter in /api itself is not an API path', '/%61pi/orders/1', { notFound: 'not_found' }],
  ['a leading double slash is not an API path', '//api/orders/1', { notFound: 'not_found' }],
  ['a prefix followed by more characters is another route', '/api/ordersX/1', { notFound: 'route_not_found' }],
  // `;` is an ordinary path character (RFC 3986): `orders;jsessionid=x` is not the segment `orders`...
  ['a path parameter on the prefix segment', '/api/orders;jsessionid=x', { notFound: 'route_not_found' }],
  // ...and after the prefix it is forwarded as it is.
  ['a path parameter after the prefix', '/api/orders/1;jsessionid=x', { upstream: '/v1/orders/1;jsessionid=x' }],
  // Servlet containers drop `;params` before resolving dots: `..;` climbs there, so it is refused here.
  ['..; climbing into a sibling route (servlet path parameters)', '/api/orders/..;/admin/x', REFUSED],
  ['encoded ..; climbing into a sibling route', '/api/orders/%2e%2e;/admin/x', REFUSED],
  ['.; with parameters', '/api/orders/.;x=1/x', REFUSED],
  // Climbing out of the route to where no route is, is refused too (not a 404).
  ['climbing out of the route to /api itself', '/api/orders/..', REFUSED],
  ['climbing out of the route to an unrouted path', '/api/orders/../x', REFUSED],
];

/** Long paths are named by their length in the test titles. */
const rows = cases.map(([name, path, outcome]) => ({ name, shown: path.length > 100 ? `${path.slice(0, 40)}… (${path.length} bytes)` : path, path, outcome }));

test.each(rows)('$name: $shown', async ({ path, outcome }) => {
  const before = stack.echo.requests.length;
  const res = await rawGetHere(path);
  if ('upstream' in outcome) {
    expect(res.status).toBe(200);
    expect(stack.echo.requests.length).toBe(before + 1);
    expect(stack.echo.requests[before]?.url).toBe(outcome.upstream);
    // The route's own token mode applied: a `user` route carried the session's token.
    const auth = stack.echo.requests[before]?.headers.authorization;
    if (outcome.upstream.startsWith('/v1/')) expect(auth).toMatch(/^Bearer \S+$/);
    else expect(auth).toBeUndefined();
    return;
  }
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = JSON.parse(res.body) as { status: number; code: string };
  if ('refused' in outcome) {
    expect(res.status).toBe(400);
    expect(body).toMatchObject({ status: 400, code: 'bad_path' });
  } else {
    expect(res.status).toBe(404);
    expect(body).toMatchObject({ status: 404, code: outcome.notFound });
  }
  expect(stack.echo.requests.length).toBe(before);
});

const rawGetHere = (path: string) => rawGet(stack.gw.url, path, { cookie, 'x-csrf': '1' });
