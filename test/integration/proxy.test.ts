import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import request from 'supertest';
import { loginThroughGateway } from '../support/browser-flow.ts';
import { getFreePort } from '../support/ports.ts';
import { rawGet } from '../support/raw-http.ts';
import { startStack, type Stack } from '../support/stack.ts';

let stack: Stack;
let cookie: string;
let accessToken: string;
let closedPort: number;

beforeAll(async () => {
  closedPort = await getFreePort();
  stack = await startStack({
    routes: [
      { prefix: '/api/echo', target: 'ECHO', token: 'user' },
      { prefix: '/api/echo/deeper', target: 'ECHO', token: 'none', rewrite: '/deeper' },
      { prefix: '/api/orders', target: 'ECHO', token: 'user', rewrite: '/v1/orders', methods: ['GET', 'POST'] },
      { prefix: '/api/public', target: 'ECHO', token: 'none' },
      { prefix: '/api/maybe', target: 'ECHO', token: 'user-optional' },
      { prefix: '/api/slow', target: 'ECHO', token: 'none', timeoutMs: 300 },
      { prefix: '/api/down', target: `http://127.0.0.1:${closedPort}`, token: 'none' },
    ],
  });
  const login = await loginThroughGateway(stack.gw.url);
  cookie = login.cookieHeader;
  accessToken = (stack.tokenResponses.at(-1) as Record<string, string>).access_token as string;
});
afterAll(async () => {
  await stack?.close();
});

const api = (path: string) => request(stack.gw.url).get(path).set('Cookie', cookie).set('x-csrf', '1');

function expectProblem(res: request.Response, status: number, code: string): void {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = JSON.parse(res.text) as Record<string, unknown>;
  expect(body.status).toBe(status);
  expect(body.code).toBe(code);
  expect(typeof body.detail).toBe('string');
}

describe('bearer injection and header hygiene', () => {
  test("the upstream gets the session's access token, which the IdP says is active, and no cookie", async () => {
    const res = await api('/api/echo/items?x=1&y=%20z');
    expect(res.status).toBe(200);
    expect(res.body.url).toBe('/api/echo/items?x=1&y=%20z');
    expect(res.body.headers.authorization).toBe(`Bearer ${accessToken}`);
    expect(res.body.headers.cookie).toBeUndefined();
    const introspection = await stack.idp.introspect(accessToken);
    expect(introspection.active).toBe(true);
    expect(introspection.sub).toBe('alice');
  });

  test('browser-sent Authorization, hop-by-hop and forwarding headers never reach the upstream', async () => {
    const res = await api('/api/echo/h')
      .set('Authorization', 'Bearer browser-made-this-up')
      .set('Connection', 'keep-alive, x-secret-hop')
      .set('x-secret-hop', 'must go')
      .set('Keep-Alive', 'timeout=5')
      .set('TE', 'trailers')
      .set('Proxy-Authorization', 'Basic Zm9vOmJhcg==')
      .set('X-Forwarded-For', '6.6.6.6')
      .set('X-Forwarded-Host', 'evil.example')
      .set('X-Forwarded-Proto', 'gopher')
      .set('Forwarded', 'for=6.6.6.6')
      .set('x-request-id', 'trace-123');
    const headers = res.body.headers as Record<string, string>;
    expect(headers.authorization).toBe(`Bearer ${accessToken}`);
    for (const name of ['x-secret-hop', 'keep-alive', 'te', 'proxy-authorization', 'forwarded']) expect(headers[name]).toBeUndefined();
    expect(headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(headers['x-forwarded-host']).toBe(new URL(stack.gw.url).host);
    expect(headers['x-forwarded-proto']).toBe('http');
    expect(headers['x-request-id']).toBe('trace-123');
    expect(res.headers['x-request-id']).toBe('trace-123');
  });

  test('a request id is minted when the browser sends none or a hostile one', async () => {
    const res = await api('/api/echo/id').set('x-request-id', 'bad id\twith spaces');
    expect(res.body.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers['x-request-id']).toBe(res.body.headers['x-request-id']);
  });

  test('a `none` route gets no token and no cookie, even from a signed-in browser', async () => {
    const res = await api('/api/public/p');
    expect(res.status).toBe(200);
    expect(res.body.headers.authorization).toBeUndefined();
    expect(res.body.headers.cookie).toBeUndefined();
  });

  test('a `user-optional` route forwards anonymously without a session and with the token with one', async () => {
    const anonymous = await request(stack.gw.url).get('/api/maybe/x').set('x-csrf', '1');
    expect(anonymous.status).toBe(200);
    expect(anonymous.body.headers.authorization).toBeUndefined();
    const signedIn = await api('/api/maybe/x');
    expect(signedIn.body.headers.authorization).toBe(`Bearer ${accessToken}`);
  });
});

describe('authentication and CSRF', () => {
  test('no session: 401 problem+json, never a redirect', async () => {
    const res = await request(stack.gw.url).get('/api/echo/x').set('x-csrf', '1').set('Accept', 'text/html');
    expectProblem(res, 401, 'not_authenticated');
    expect(res.headers.location).toBeUndefined();
  });

  test('a tampered or unknown cookie is an anonymous request, not a 500', async () => {
    const value = cookie.split('=')[1] as string;
    const tampered = `bff=${value.slice(0, 10)}${value[10] === 'A' ? 'B' : 'A'}${value.slice(11)}`;
    expectProblem(await request(stack.gw.url).get('/api/echo/x').set('x-csrf', '1').set('Cookie', tampered), 401, 'not_authenticated');
    expectProblem(await request(stack.gw.url).get('/api/echo/x').set('x-csrf', '1').set('Cookie', 'bff=garbage'), 401, 'not_authenticated');
    expectProblem(await request(stack.gw.url).get('/api/echo/x').set('x-csrf', '1').set('Cookie', 'bff=s%3Aabc.def'), 401, 'not_authenticated');
    const user = await request(stack.gw.url).get('/auth/user').set('Cookie', tampered);
    expectProblem(user, 401, 'not_authenticated');
  });

  test('the CSRF header is required on every API call, and cross-site requests are refused', async () => {
    const before = stack.echo.requests.length;
    expectProblem(await request(stack.gw.url).get('/api/echo/x').set('Cookie', cookie), 403, 'csrf_header_missing');
    expectProblem(await request(stack.gw.url).get('/api/public/x'), 403, 'csrf_header_missing');
    expectProblem(await api('/api/echo/x').set('x-csrf', '0'), 403, 'csrf_header_missing');
    expectProblem(await api('/api/echo/x').set('Origin', 'https://evil.example'), 403, 'cross_site_request');
    expectProblem(await api('/api/echo/x').set('Sec-Fetch-Site', 'cross-site'), 403, 'cross_site_request');
    expectProblem(await api('/api/echo/x').set('Sec-Fetch-Site', 'same-site'), 403, 'cross_site_request');
    expect(stack.echo.requests.length).toBe(before);
    const sameOrigin = await api('/api/echo/x').set('Origin', stack.gw.url).set('Sec-Fetch-Site', 'same-origin');
    expect(sameOrigin.status).toBe(200);
  });

  test('a CORS preflight is never granted', async () => {
    const res = await request(stack.gw.url).options('/api/echo/x').set('Origin', 'https://evil.example').set('Access-Control-Request-Method', 'POST').set('Access-Control-Request-Headers', 'x-csrf');
    expect(res.status).toBe(403);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('routing', () => {
  test('prefixes match whole segments and the longest prefix wins', async () => {
    expectProblem(await api('/api/echoX'), 404, 'route_not_found');
    expectProblem(await api('/api/nothing/here'), 404, 'route_not_found');
    expectProblem(await api('/api'), 404, 'route_not_found');
    const deeper = await api('/api/echo/deeper/1');
    expect(deeper.body.url).toBe('/deeper/1');
    expect(deeper.body.headers.authorization).toBeUndefined();
    const echo = await api('/api/echo/deeperX');
    expect(echo.body.url).toBe('/api/echo/deeperX');
  });

  test('rewrite replaces the prefix and keeps the rest of the path and the query string', async () => {
    expect((await api('/api/orders')).body.url).toBe('/v1/orders');
    expect((await api('/api/orders/7/lines?page=2&sort=-date')).body.url).toBe('/v1/orders/7/lines?page=2&sort=-date');
  });

  test('a method outside the allow-list is 405 with Allow', async () => {
    const res = await request(stack.gw.url).delete('/api/orders/7').set('Cookie', cookie).set('x-csrf', '1');
    expectProblem(res, 405, 'method_not_allowed');
    expect(res.headers.allow).toBe('GET, POST');
  });

  test.each([
    ['/api/orders/../../auth/user'],
    ['/api/orders/%2e%2e/%2e%2e/auth/user'],
    ['/api/orders/..%2f..%2fauth/user'],
    ['/api/orders/%2E%2E%2F%2E%2E%2Fauth'],
    ['/api/orders/..%5c..%5cauth'],
    ['/api/orders/%zz'],
    ['/api/orders/%'],
    ['/api/orders/a%00b'],
    ['/api/../../etc/passwd'],
    // Climbing from one route into another would swap its token mode and methods.
    ['/api/orders/../public/x'],
    ['/api/orders/%2e%2e/public/x'],
  ])('a path that leaves its prefix or is malformed is 400: %s', async (path) => {
    const before = stack.echo.requests.length;
    const res = await rawGetHere(path);
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(stack.echo.requests.length).toBe(before);
  });

  test('dot segments inside the prefix are resolved before matching and forwarding', async () => {
    const res = await rawGetHere('/api/orders/7/../8/./lines');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).url).toBe('/v1/orders/8/lines');
  });
});

describe('upstream failures and streaming', () => {
  test('an unreachable upstream is 502 problem+json without internals', async () => {
    const res = await api('/api/down/x');
    expectProblem(res, 502, 'upstream_unavailable');
    expect(res.text).not.toContain(String(closedPort));
    expect(res.text).not.toContain('ECONNREFUSED');
  });

  test('an upstream slower than timeoutMs is 504 problem+json', async () => {
    const res = await api('/api/slow/__slow?ms=2000');
    expectProblem(res, 504, 'upstream_timeout');
    const fast = await api('/api/slow/__slow?ms=10');
    expect(fast.status).toBe(200);
  });

  test('upstream statuses pass through unchanged', async () => {
    const res = await api('/api/echo/__status?code=418');
    expect(res.status).toBe(418);
  });

  test('a request body streams through intact (5 MiB)', async () => {
    const body = randomBytes(5 * 1024 * 1024);
    const res = await request(stack.gw.url).post('/api/orders/upload').set('Cookie', cookie).set('x-csrf', '1').set('Content-Type', 'application/octet-stream').send(body);
    expect(res.status).toBe(200);
    expect(res.body.bodyLength).toBe(body.length);
    expect(res.body.bodySha256).toBe(createHash('sha256').update(body).digest('hex'));
  });

  test('upstream connections are kept alive and reused', async () => {
    const before = stack.echo.connections;
    for (let i = 0; i < 20; i++) expect((await api('/api/public/ka')).status).toBe(200);
    expect(stack.echo.connections - before).toBeLessThanOrEqual(2);
  });
});

describe('upstream cookies', () => {
  test("an upstream cannot replace or delete the gateway's own cookies; its other cookies pass", async () => {
    const sets = ['bff=forged; Path=/; HttpOnly', 'bff-tx=x; Path=/', 'theme=dark; Path=/api/public'];
    const res = await api(`/api/public/__set-cookie?${sets.map((c) => `set=${encodeURIComponent(c)}`).join('&')}`);
    expect(res.status).toBe(200);
    expect(res.headers['set-cookie']).toEqual(['theme=dark; Path=/api/public']);
    expect(stack.gw.logs.join('')).toContain("upstream tried to set the gateway's own cookie; dropped");
    // The session is intact.
    expect((await request(stack.gw.url).get('/auth/user').set('Cookie', cookie)).status).toBe(200);
  });
});

describe('security headers', () => {
  test('gateway responses carry helmet headers and no X-Powered-By', async () => {
    const res = await request(stack.gw.url).get('/auth/user');
    expect(res.headers['x-powered-by']).toBeUndefined();
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    const proxied = await api('/api/public/x');
    expect(proxied.headers['x-powered-by']).toBeUndefined();
  });
});

const rawGetHere = (path: string) => rawGet(stack.gw.url, path, { cookie, 'x-csrf': '1' });
