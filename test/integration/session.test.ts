import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import request from 'supertest';
import { CookieJar, followRedirects, loginThroughGateway } from '../support/browser-flow.ts';
import { startTestGateway, TEST_SESSION_SECRET } from '../support/gateway.ts';
import { getFreePort } from '../support/ports.ts';
import { startRedis } from '../support/redis.ts';
import { legacyRecord } from '../support/legacy-session.ts';
import { recordKeyId, secretForms, sessionKeyOf, storedRecord, storedSession } from '../support/redis-values.ts';
import { rawRedis, setCookie, startStack, type Stack } from '../support/stack.ts';

let stack: Stack;
let redis: Awaited<ReturnType<typeof rawRedis>>;

beforeAll(async () => {
  stack = await startStack();
  redis = await rawRedis();
});
afterAll(async () => {
  await redis?.close();
  await stack?.close();
});

describe('encrypted session in Redis', () => {
  test("the raw Redis value holds none of the tokens, in any encoding, nor the cookie's key half", async () => {
    const { jar } = await loginThroughGateway(stack.gw.url);
    const tokens = stack.tokenResponses.at(-1) as Record<string, unknown>;
    const cookieValue = decodeURIComponent(jar.get(stack.gw.url, 'bff') as string);
    const [, storeId, sessionKey] = /^s:([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})\./.exec(cookieValue) ?? [];
    expect(storeId).toBeDefined();
    const stored = await storedRecord(redis, cookieValue);
    for (const name of ['access_token', 'refresh_token', 'id_token']) {
      const token = tokens[name];
      if (typeof token !== 'string') throw new Error(`the IdP issued no ${name}`);
      for (const form of secretForms(token)) expect(stored.includes(form)).toBe(false);
    }
    for (const form of [...secretForms(sessionKey as string), Buffer.from(sessionKey as string, 'base64url'), Buffer.from('alice@example.test')]) expect(stored.includes(form)).toBe(false);
    // A binary record (version 2) that names its key (a hash of the secret, never the secret) and holds nothing else: no JSON, no expiry.
    expect(stored[0]).toBe(2);
    expect(recordKeyId(stored)).toMatch(/^[A-Za-z0-9_-]{8}$/);
    expect(stored.includes(Buffer.from(TEST_SESSION_SECRET))).toBe(false);
    expect(stored.includes(Buffer.from('expires'))).toBe(false);
    // The record expires by itself: idle timeout as TTL.
    const ttl = await redis.ttl(`bff:sess:{${storeId}}`);
    expect(ttl).toBeGreaterThan(1700);
    expect(ttl).toBeLessThanOrEqual(1800);
  });

  test('a session stored by the previous release (connect-redis JSON envelope) still works after the upgrade and is stored in the binary format at its next write', async () => {
    const { cookieHeader } = await loginThroughGateway(stack.gw.url);
    const { key, recordId, recordKey } = sessionKeyOf(cookieHeader);
    const user = await storedSession(redis, cookieHeader, [TEST_SESSION_SECRET]);
    // Expired: the next API call refreshes, which rewrites the record.
    const old = legacyRecord({ ...user, accessTokenExpiresAt: Date.now() - 1000 }, [TEST_SESSION_SECRET], recordKey, recordId, 1_800_000);
    await redis.set(key, old, { expiration: { type: 'EX', value: 1800 } });
    const me = await request(stack.gw.url).get('/auth/user').set('Cookie', cookieHeader);
    expect(me.status).toBe(200);
    expect(me.body.sub).toBe('alice');
    expect(me.body.claims).toEqual(user.claims);
    expect((await storedRecord(redis, cookieHeader)).toString('utf8')).toBe(old);
    const refreshes = stack.idp.counts.refreshToken;
    const api = await request(stack.gw.url).get('/api/echo/x').set('Cookie', cookieHeader).set('x-csrf', '1');
    expect(api.status).toBe(200);
    expect(stack.idp.counts.refreshToken - refreshes).toBe(1);
    expect((await storedRecord(redis, cookieHeader))[0]).toBe(2);
    const rewritten = await storedSession(redis, cookieHeader, [TEST_SESSION_SECRET]);
    expect(rewritten.claims).toEqual(user.claims);
    expect(rewritten.logoutNonce).toBe(user.logoutNonce);
    expect(rewritten.accessToken).not.toBe(user.accessToken);
    expect((await request(stack.gw.url).get('/auth/user').set('Cookie', cookieHeader)).status).toBe(200);
  });

  test('the session cookie is HttpOnly, SameSite=Strict, Path=/, without Domain, and holds only an opaque signed id', async () => {
    const jar = new CookieJar();
    const callback = await followRedirects(jar, `${stack.gw.url}/auth/login`, { stopAt: (url) => url.pathname === '/auth/callback' });
    const url = new URL(callback.location as string);
    const res = await request(stack.gw.url)
      .get(url.pathname + url.search)
      .set('Cookie', `bff-tx=${jar.get(stack.gw.url, 'bff-tx')}`);
    const session = setCookie(res.headers, 'bff') as string;
    expect(session).toMatch(/^bff=s%3A[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}\.[A-Za-z0-9%]+; Path=\/; Expires=[^;]+; HttpOnly; SameSite=Strict$/);
    expect(session).not.toMatch(/Domain/i);
    // The transaction cookie is deleted: after login the browser holds exactly one gateway cookie.
    expect(setCookie(res.headers, 'bff-tx')).toMatch(/^bff-tx=; Path=\/; Expires=Thu, 01 Jan 1970/);
  });

  test('rotating BFF_SESSION_SECRETS to "new,old" keeps existing sessions working; dropping the old secret ends them', async () => {
    const { cookieHeader } = await loginThroughGateway(stack.gw.url);
    const newSecret = 'rotated-session-secret-abcdefghijklmnopqrstuvwxyz-0123';
    const rotated = await startTestGateway({
      url: stack.gw.url,
      issuer: stack.idp.issuer,
      routes: [{ prefix: '/api/echo', target: stack.echo.url, token: 'user' }],
      // A second instance (on its own port) behind the same public URL, as during a rolling deploy.
      env: { BFF_SESSION_SECRETS: `${newSecret},${TEST_SESSION_SECRET}`, BFF_PORT: '0' },
    });
    const onlyNew = await startTestGateway({ url: stack.gw.url, issuer: stack.idp.issuer, env: { BFF_SESSION_SECRETS: newSecret, BFF_PORT: '0' } });
    try {
      const user = await request(rotated.gateway.url).get('/auth/user').set('Cookie', cookieHeader);
      expect(user.status).toBe(200);
      expect(user.body.sub).toBe('alice');
      const api = await request(rotated.gateway.url).get('/api/echo/x').set('Cookie', cookieHeader).set('x-csrf', '1');
      expect(api.status).toBe(200);
      expect(api.body.headers.authorization).toMatch(/^Bearer /);
      expect((await request(onlyNew.gateway.url).get('/auth/user').set('Cookie', cookieHeader)).status).toBe(401);
    } finally {
      await rotated.close();
      await onlyNew.close();
    }
  });
});

describe('https public URL', () => {
  test('the cookies are __Host- prefixed and Secure', async () => {
    // TLS ends in front of the gateway: the public URL is https while the gateway itself listens on plain http.
    const publicUrl = `https://127.0.0.1:${await getFreePort()}`;
    const secure = await startStack({ idp: { redirectUris: [`${publicUrl}/auth/callback`], postLogoutRedirectUris: [`${publicUrl}/`] }, env: { BFF_PUBLIC_URL: publicUrl, BFF_PORT: '0' } });
    try {
      const login = await request(secure.gw.gateway.url).get('/auth/login');
      expect(login.status).toBe(302);
      const tx = setCookie(login.headers, '__Host-bff-tx') as string;
      expect(tx).toMatch(/; Path=\/;.*; HttpOnly; Secure; SameSite=Lax$/);
      const jar = new CookieJar();
      const back = await followRedirects(jar, login.headers.location as string, { stopAt: (url) => url.pathname === '/auth/callback' });
      const callback = new URL(back.location as string);
      expect(callback.origin).toBe(publicUrl);
      const res = await request(secure.gw.gateway.url)
        .get(callback.pathname + callback.search)
        .set('Cookie', tx.split(';')[0] as string);
      expect(res.status).toBe(302);
      expect(setCookie(res.headers, '__Host-bff')).toMatch(/^__Host-bff=s%3A[^;]+; Path=\/; Expires=[^;]+; HttpOnly; Secure; SameSite=Strict$/);
    } finally {
      await secure.close();
    }
  });
});

describe('memory store (no BFF_REDIS_URL)', () => {
  test('the whole loop works and the gateway warns that it serves one instance only', async () => {
    const memory = await startStack({ store: 'memory' });
    try {
      expect(memory.gw.logs.join('')).toContain('ONE instance only');
      const { cookieHeader } = await loginThroughGateway(memory.gw.url);
      const api = await request(memory.gw.url).get('/api/echo/x').set('Cookie', cookieHeader).set('x-csrf', '1');
      expect(api.status).toBe(200);
      expect((await memory.idp.introspect((api.body.headers.authorization as string).slice(7))).active).toBe(true);
      const logout = await request(memory.gw.url).post('/auth/logout').set('Cookie', cookieHeader).set('x-csrf', '1');
      expect(logout.status).toBe(200);
      expect((await request(memory.gw.url).get('/auth/user').set('Cookie', cookieHeader)).status).toBe(401);
    } finally {
      await memory.close();
    }
  });
});

describe('Redis outage', () => {
  test('requests that need the session get 503 problem+json fast, others still work, and it recovers without a restart', async () => {
    const own = await startRedis();
    const outage = await startStack({
      env: { BFF_REDIS_URL: own.url },
      routes: [
        { prefix: '/api/echo', target: 'ECHO', token: 'user' },
        { prefix: '/api/public', target: 'ECHO', token: 'none' },
      ],
    });
    try {
      const { cookieHeader } = await loginThroughGateway(outage.gw.url);
      await own.stop();
      const started = Date.now();
      const api = await request(outage.gw.url).get('/api/echo/x').set('Cookie', cookieHeader).set('x-csrf', '1');
      expect(api.status).toBe(503);
      expect(api.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(JSON.parse(api.text).code).toBe('session_store_unavailable');
      const user = await request(outage.gw.url).get('/auth/user').set('Cookie', cookieHeader);
      expect(user.status).toBe(503);
      expect(Date.now() - started).toBeLessThan(5000);
      expect((await request(outage.gw.url).get('/api/public/x').set('x-csrf', '1')).status).toBe(200);
      const ready = await request(outage.gw.gateway.adminUrl).get('/readyz');
      expect(ready.status).toBe(503);
      expect((await request(outage.gw.gateway.adminUrl).get('/healthz')).status).toBe(200);

      const back = await startRedis({ port: own.port });
      try {
        // The session died with the Redis process (no persistence); a fresh login works on the reconnected client.
        const deadline = Date.now() + 10_000;
        while ((await request(outage.gw.gateway.adminUrl).get('/readyz')).status !== 200) {
          if (Date.now() > deadline) throw new Error('readiness did not recover');
          await new Promise((r) => setTimeout(r, 100));
        }
        const again = await loginThroughGateway(outage.gw.url);
        expect((await request(outage.gw.url).get('/api/echo/x').set('Cookie', again.cookieHeader).set('x-csrf', '1')).status).toBe(200);
      } finally {
        await back.stop();
      }
    } finally {
      await outage.close();
    }
  });
});
