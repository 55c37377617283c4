import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { rawRedis, startStack, type Stack } from '../support/stack.ts';

/** What a stolen Redis dump shows of a login in flight. */
let stack: Stack;
let redis: Awaited<ReturnType<typeof rawRedis>>;

beforeAll(async () => {
  // Without PAR the authorization URL shows the state, nonce and PKCE challenge this test looks for.
  stack = await startStack({ idp: { par: false } });
  redis = await rawRedis();
});
afterAll(async () => {
  await redis?.close();
  await stack?.close();
});

test('a login transaction in Redis is encrypted: no state, nonce, PKCE values or returnTo in it, and it expires within 10 minutes', async () => {
  const returnTo = '/a-very-particular-place';
  const res = await fetch(`${stack.gw.url}/auth/login?returnTo=${encodeURIComponent(returnTo)}`, { redirect: 'manual' });
  expect(res.status).toBe(302);
  const authorize = new URL(res.headers.get('location') as string);
  const secrets = ['state', 'nonce', 'code_challenge'].map((name) => authorize.searchParams.get(name) as string);
  for (const value of secrets) expect(value).toMatch(/^[A-Za-z0-9_-]{20,}$/);
  const txCookie = res.headers.getSetCookie().find((c) => c.startsWith('bff-tx=')) as string;
  const [storeId, keyHalf] = (/^bff-tx=([^;]+)/.exec(txCookie)?.[1] ?? '').split('.');
  const stored = await redis.get(`bff:tx:${storeId}`);
  expect(stored).not.toBeNull();
  for (const value of [...secrets, returnTo, keyHalf as string]) expect(stored).not.toContain(value);
  // An AES-256-GCM envelope: version, key id, IV, ciphertext; its key needs the half that only the cookie holds.
  expect(stored).toMatch(/^v1\.[A-Za-z0-9_-]{8}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{40,}$/);
  const ttl = await redis.pTTL(`bff:tx:${storeId}`);
  expect(ttl).toBeGreaterThan(0);
  expect(ttl).toBeLessThanOrEqual(10 * 60_000);
});
