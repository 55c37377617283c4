import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import request from 'supertest';
import type { EchoReply } from '../support/echo.ts';
import { loginThroughGateway } from '../support/browser-flow.ts';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { startStack, type Stack } from '../support/stack.ts';

const SCOPE = 'profile';

let stack: Stack;
const extraGateways: TestGateway[] = [];

const routes = (echoUrl: string) => [
  { prefix: '/api/client', target: echoUrl, token: 'client' },
  { prefix: '/api/scoped', target: echoUrl, token: 'client', scope: SCOPE },
  { prefix: '/api/either', target: echoUrl, token: 'user-or-client' },
];

beforeAll(async () => {
  stack = await startStack({
    routes: routes('ECHO'),
    idp: { grantTypes: ['authorization_code', 'refresh_token', 'client_credentials'] },
  });
});
afterAll(async () => {
  for (const gw of extraGateways) await gw.close();
  await stack?.close();
});

/** Another instance behind the same public URL, on a port of its own: its token cache is cold. */
async function freshGateway(): Promise<string> {
  const gw = await startTestGateway({ url: stack.gw.url, issuer: stack.idp.issuer, routes: routes(stack.echo.url), env: { BFF_PORT: '0' } });
  extraGateways.push(gw);
  return gw.gateway.url;
}

const api = (gatewayUrl: string, path: string) => request(gatewayUrl).get(path).set('x-csrf', '1');

/** The token the echo upstream received. */
function bearerOf(res: request.Response): string {
  expect(res.status).toBe(200);
  const authorization = (res.body as EchoReply).headers.authorization;
  expect(authorization).toMatch(/^Bearer \S+$/);
  return (authorization as string).slice('Bearer '.length);
}

async function expectClientToken(token: string): Promise<Record<string, unknown>> {
  const introspection = await stack.idp.introspect(token);
  expect(introspection.active).toBe(true);
  expect(introspection.client_id).toBe('bff');
  expect(introspection.sub).toBeUndefined();
  return introspection;
}

describe('token: client', () => {
  test("sends the gateway's own token, which the IdP says is active, for bff, and of no user; no session needed", async () => {
    const res = await api(stack.gw.url, '/api/client/things');
    expect((res.body as EchoReply).url).toBe('/api/client/things');
    expect((res.body as EchoReply).headers.cookie).toBeUndefined();
    await expectClientToken(bearerOf(res));
  });

  test('still needs the CSRF header: 403, and nothing reaches the upstream', async () => {
    const before = stack.echo.requests.length;
    const res = await request(stack.gw.url).get('/api/client/things');
    expect(res.status).toBe(403);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(res.text).code).toBe('csrf_header_missing');
    expect(stack.echo.requests.length).toBe(before);
  });

  test('50 concurrent cold requests cause exactly one client-credentials grant and all send the same token', async () => {
    const gateway = await freshGateway();
    const before = stack.idp.counts.clientCredentials;
    const responses = await Promise.all(Array.from({ length: 50 }, (_, i) => api(gateway, `/api/client/${i}`)));
    const tokens = new Set(responses.map(bearerOf));
    expect(tokens.size).toBe(1);
    expect(stack.idp.counts.clientCredentials - before).toBe(1);
    const [token] = [...tokens] as [string];
    await expectClientToken(token);

    // Later requests reuse the cached token: no new grant.
    const later = await Promise.all(Array.from({ length: 10 }, (_, i) => api(gateway, `/api/client/later/${i}`)));
    for (const res of later) expect(bearerOf(res)).toBe(token);
    expect(bearerOf(await api(gateway, '/api/client/last'))).toBe(token);
    expect(stack.idp.counts.clientCredentials - before).toBe(1);
  });

  test('a route with a scope gets a token of its own, with that scope, cached separately', async () => {
    const gateway = await freshGateway();
    const before = stack.idp.counts.clientCredentials;
    const plain = bearerOf(await api(gateway, '/api/client/a'));
    expect(stack.idp.counts.clientCredentials - before).toBe(1);
    const scoped = bearerOf(await api(gateway, '/api/scoped/a'));
    expect(stack.idp.counts.clientCredentials - before).toBe(2);
    expect(scoped).not.toBe(plain);

    const scopedIntrospection = await expectClientToken(scoped);
    expect(String(scopedIntrospection.scope ?? '').split(' ')).toContain(SCOPE);
    const plainIntrospection = await expectClientToken(plain);
    expect(String(plainIntrospection.scope ?? '').split(' ')).not.toContain(SCOPE);

    // Each is reused for its own route, and neither replaces the other.
    expect(bearerOf(await api(gateway, '/api/scoped/b'))).toBe(scoped);
    expect(bearerOf(await api(gateway, '/api/client/b'))).toBe(plain);
    expect(stack.idp.counts.clientCredentials - before).toBe(2);
  });
});

describe('token: user-or-client', () => {
  test("with a session, the user's token goes upstream", async () => {
    const { cookieHeader } = await loginThroughGateway(stack.gw.url);
    const userAccessToken = (stack.tokenResponses.at(-1) as Record<string, string>).access_token as string;
    const res = await api(stack.gw.url, '/api/either/me').set('Cookie', cookieHeader);
    const token = bearerOf(res);
    expect(token).toBe(userAccessToken);
    const introspection = await stack.idp.introspect(token);
    expect(introspection.active).toBe(true);
    expect(introspection.sub).toBe('alice');
    expect(introspection.client_id).toBe('bff');
    expect((res.body as EchoReply).headers.cookie).toBeUndefined();
  });

  test("anonymous, the gateway's client token goes upstream (the same cached one the client route uses)", async () => {
    const anonymous = bearerOf(await api(stack.gw.url, '/api/either/me'));
    await expectClientToken(anonymous);
    expect(bearerOf(await api(stack.gw.url, '/api/client/x'))).toBe(anonymous);
  });
});

describe('IdP outage', () => {
  test('with a cold cache: 503 client_token_unavailable and nothing upstream; once the IdP is back the next request succeeds', async () => {
    const gateway = await freshGateway();
    await stack.idp.stop();
    try {
      const before = stack.echo.requests.length;
      const res = await api(gateway, '/api/client/down');
      expect(res.status).toBe(503);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      const body = JSON.parse(res.text) as Record<string, unknown>;
      expect(body.status).toBe(503);
      expect(body.code).toBe('client_token_unavailable');
      expect(stack.echo.requests.length).toBe(before);
    } finally {
      await stack.idp.start();
    }
    const before = stack.idp.counts.clientCredentials;
    const token = bearerOf(await api(gateway, '/api/client/up'));
    expect(stack.idp.counts.clientCredentials - before).toBe(1);
    await expectClientToken(token);
  });
});
