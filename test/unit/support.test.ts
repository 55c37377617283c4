import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import * as client from 'openid-client';
import { CookieJar, followRedirects } from '../support/browser-flow.ts';
import { startEcho, type EchoReply, type EchoServer } from '../support/echo.ts';
import { startIdp, TEST_CLIENT_ID, TEST_CLIENT_SECRET, type TestIdp } from '../support/idp.ts';
import { startRedis, testRedisUrl } from '../support/redis.ts';

// The support code is what every integration test stands on: prove it before trusting it.

describe('echo upstream', () => {
  let echo: EchoServer;
  beforeAll(async () => {
    echo = await startEcho();
  });
  afterAll(() => echo.close());

  it('hashes a streamed body and records the request', async () => {
    const body = randomBytes(3 * 1024 * 1024 + 7);
    const response = await fetch(`${echo.url}/api/things?x=1`, { method: 'PUT', body, headers: { 'x-test': 'yes' } });
    const reply = (await response.json()) as EchoReply;

    expect(response.status).toBe(200);
    expect(reply).toMatchObject({ method: 'PUT', url: '/api/things?x=1', bodyLength: body.length });
    expect(reply.bodySha256).toBe(createHash('sha256').update(body).digest('hex'));
    expect(reply.headers['x-test']).toBe('yes');
    expect(echo.requests.at(-1)).toMatchObject({ method: 'PUT', url: '/api/things?x=1' });
    expect(echo.connections).toBeGreaterThanOrEqual(1);
  });

  it('answers a chosen status and waits when asked, behind any prefix', async () => {
    const status = await fetch(`${echo.url}/api/orders/__status?code=418`);
    expect(status.status).toBe(418);
    await status.arrayBuffer();

    const started = Date.now();
    const slow = await fetch(`${echo.url}/anything/__slow?ms=200`);
    expect(slow.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    await slow.arrayBuffer();
  });
});

describe('CookieJar', () => {
  const gateway = 'http://127.0.0.1:3000';

  it('sends host-only cookies to the same host on any port, and not to another host', () => {
    const jar = new CookieJar();
    jar.setCookie('bff=abc; Path=/; HttpOnly; SameSite=Strict', `${gateway}/auth/callback`);

    expect(jar.cookieHeader('http://127.0.0.1:4000/api/x')).toBe('bff=abc');
    expect(jar.cookieHeader('http://localhost:3000/')).toBe('');
    expect(jar.cookies(gateway)[0]).toMatchObject({ httpOnly: true, sameSite: 'strict', hostOnly: true });
  });

  it('deletes a cookie on Max-Age=0 and on a past Expires', () => {
    const jar = new CookieJar();
    jar.setCookie('a=1; Path=/', gateway);
    jar.setCookie('b=2; Path=/', gateway);
    expect(jar.cookieHeader(gateway)).toBe('a=1; b=2');

    jar.setCookie('a=; Path=/; Max-Age=0', gateway);
    jar.setCookie('b=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT', gateway);
    expect(jar.cookieHeader(gateway)).toBe('');
  });

  it('keeps cookies of different paths apart and matches paths by segment', () => {
    const jar = new CookieJar();
    jar.setCookie('tx=1; Path=/auth', gateway);
    jar.setCookie('tx=2; Path=/', gateway);

    expect(jar.cookieHeader(`${gateway}/auth/callback`)).toBe('tx=1; tx=2');
    expect(jar.cookieHeader(`${gateway}/authx`)).toBe('tx=2');
    jar.setCookie('tx=; Path=/auth; Max-Age=0', gateway);
    expect(jar.cookieHeader(`${gateway}/auth/callback`)).toBe('tx=2');
  });

  it('applies cookie prefixes and SameSite like a browser', () => {
    const jar = new CookieJar();
    jar.setCookie('__Host-a=1; Path=/auth; Secure', gateway);
    jar.setCookie('__Host-b=1; Path=/', gateway);
    jar.setCookie('__Host-c=1; Path=/; Secure; SameSite=Strict', gateway);
    jar.setCookie('lax=1; Path=/; SameSite=Lax', gateway);

    expect(jar.cookieHeader(gateway)).toBe('__Host-c=1; lax=1');
    expect(jar.cookieHeader(gateway, { crossSite: true })).toBe('lax=1');
    expect(jar.cookieHeader(gateway, { crossSite: true, unsafeMethod: true })).toBe('');
  });
});

describe('redis-server child process', () => {
  it('starts on a free port, answers PING, stops and restarts on the same port', async () => {
    const redis = await startRedis();
    expect(redis.port).not.toBe(6379);
    expect(await rawPing(redis.port)).toBe('+PONG');

    await redis.stop();
    await expect(rawPing(redis.port)).rejects.toThrow();

    const again = await startRedis({ port: redis.port });
    try {
      expect(again.url).toBe(redis.url);
      expect(await rawPing(again.port)).toBe('+PONG');
    } finally {
      await again.stop();
    }
  });

  it('says how to install redis-server when it is missing', async () => {
    await expect(startRedis({ binary: '/nonexistent/redis-server' })).rejects.toThrow('install it with `apt-get install -y redis-server`');
  });

  it('global setup shares one for the run', async () => {
    expect(await rawPing(Number(new URL(testRedisUrl()).port))).toBe('+PONG');
  });
});

describe('test IdP', () => {
  const redirectUri = 'http://127.0.0.1:1/auth/callback';
  const postLogoutUri = 'http://127.0.0.1:1/';
  let idp: TestIdp;
  let echo: EchoServer;
  let config: client.Configuration;

  beforeAll(async () => {
    echo = await startEcho();
    idp = await startIdp({
      redirectUris: [redirectUri],
      postLogoutRedirectUris: [postLogoutUri],
      backchannelLogoutUri: `${echo.url}/backchannel-logout`,
      grantTypes: ['authorization_code', 'refresh_token', 'client_credentials'],
    });
    config = await client.discovery(new URL(idp.issuer), TEST_CLIENT_ID, TEST_CLIENT_SECRET, client.ClientSecretBasic(TEST_CLIENT_SECRET), {
      execute: [client.allowInsecureRequests],
    });
  });
  afterAll(async () => {
    await idp.close();
    await echo.close();
  });

  it('completes a PAR + PKCE login through redirects alone, then refreshes, introspects, revokes and logs out', async () => {
    idp.nextAccount = 'bob';
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const authorizationUrl = await client.buildAuthorizationUrlWithPAR(config, {
      redirect_uri: redirectUri,
      scope: 'openid profile email offline_access',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    const jar = new CookieJar();
    const toCallback = await followRedirects(jar, authorizationUrl.href, {
      initiator: 'http://127.0.0.1:1',
      stopAt: (url) => url.href.startsWith(redirectUri),
    });
    expect(toCallback.location).toBeDefined();

    const tokens = await client.authorizationCodeGrant(config, new URL(toCallback.location ?? ''), {
      pkceCodeVerifier: verifier,
      expectedState: state,
      expectedNonce: nonce,
      idTokenExpected: true,
    });
    const claims = tokens.claims();
    expect(claims).toMatchObject({ sub: 'bob', name: 'Test User bob', email: 'bob@example.test', email_verified: true });
    expect(typeof claims?.sid).toBe('string');
    expect(tokens.expires_in).toBe(300);
    expect(tokens.refresh_token).toBeDefined();
    expect(await idp.introspect(tokens.access_token)).toMatchObject({ active: true, sub: 'bob', client_id: TEST_CLIENT_ID });

    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token ?? '');
    expect(refreshed.refresh_token).toBe(tokens.refresh_token);
    await client.clientCredentialsGrant(config);
    await client.tokenRevocation(config, tokens.refresh_token ?? '');
    expect(idp.counts).toEqual({ authorizationCode: 1, refreshToken: 1, clientCredentials: 1, par: 1, revocation: 1, resourceRefresh: 0, tokenExchange: 0 });
    expect(await idp.introspect(tokens.refresh_token ?? '')).toEqual({ active: false });

    const logout = await followRedirects(jar, client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token ?? '', post_logout_redirect_uri: postLogoutUri }).href, {
      initiator: 'http://127.0.0.1:1',
      stopAt: (url) => url.href.startsWith(postLogoutUri),
    });
    expect(logout.location).toBe(postLogoutUri);
    expect(echo.requests.at(-1)).toMatchObject({ method: 'POST', url: '/backchannel-logout' });
  });

  it('sends a back-channel logout on demand and survives an outage on the same port', async () => {
    const before = echo.requests.length;
    await idp.sendBackchannelLogout('alice', 'some-sid');
    expect(echo.requests.length).toBe(before + 1);

    await idp.stop();
    await expect(fetch(`${idp.issuer}/.well-known/openid-configuration`)).rejects.toThrow();
    await idp.start();
    expect((await fetch(`${idp.issuer}/.well-known/openid-configuration`)).status).toBe(200);
  });
});

function rawPing(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('error', reject);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (chunk: Buffer) => {
      socket.destroy();
      resolve(chunk.toString('utf8').trim());
    });
  });
}
