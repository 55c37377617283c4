import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import { SignJWT, type JWTPayload } from 'jose';
import request from 'supertest';
import { CookieJar, loginThroughGateway } from '../support/browser-flow.ts';
import { reserveGatewayUrl, startTestGateway, type TestGateway } from '../support/gateway.ts';
import { startIdp, type TestIdp } from '../support/idp.ts';
import { scrape } from '../support/metrics.ts';
import { rawRedis, setCookie } from '../support/stack.ts';
import { sessionFate } from '../support/session-fate.ts';

const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
const ENDPOINT = '/auth/backchannel-logout';

let idp: TestIdp;
/** On the public URL the IdP knows; the IdP's logout tokens arrive here. */
let gwA: TestGateway;
/** Another instance behind the same public URL, on a port of its own, sharing the Redis. */
let gwB: TestGateway;
let redis: Awaited<ReturnType<typeof rawRedis>>;

beforeAll(async () => {
  const publicUrl = await reserveGatewayUrl();
  idp = await startIdp({
    redirectUris: [`${publicUrl}/auth/callback`],
    postLogoutRedirectUris: [`${publicUrl}/`],
    backchannelLogoutUri: `${publicUrl}${ENDPOINT}`,
  });
  gwA = await startTestGateway({ url: publicUrl, issuer: idp.issuer });
  gwB = await startTestGateway({ url: publicUrl, issuer: idp.issuer, env: { BFF_PORT: '0' } });
  redis = await rawRedis();
});
afterAll(async () => {
  await redis?.close();
  await gwB?.close();
  await gwA?.close();
  await idp?.close();
});

type Session = { cookie: string; storeId: string; storeKey: string; sub: string; sid: string };

/** A login through A in a fresh browser (so the IdP starts a new session of its own, with a new sid). */
async function login(account = 'alice'): Promise<Session> {
  idp.nextAccount = account;
  try {
    const jar = new CookieJar();
    const { cookieHeader } = await loginThroughGateway(gwA.url, jar);
    const storeId = /^s:([^.]+)\./.exec(decodeURIComponent(jar.get(gwA.url, 'bff') ?? ''))?.[1];
    expect(storeId).toBeDefined();
    const user = await request(gwA.gateway.url).get('/auth/user').set('Cookie', cookieHeader);
    expect(user.status).toBe(200);
    expect(user.body.sub).toBe(account);
    const sid = (user.body.claims as Record<string, unknown>).sid;
    expect(typeof sid).toBe('string');
    expect(await redis.exists(`bff:sess:{${storeId}}`)).toBe(1);
    return { cookie: cookieHeader, storeId: storeId as string, storeKey: `bff:sess:{${storeId}}`, sub: account, sid: sid as string };
  } finally {
    idp.nextAccount = 'alice';
  }
}

const { expectAlive, expectEnded } = sessionFate(
  () => [gwA.gateway.url, gwB.gateway.url],
  () => redis,
);

type TokenOptions = {
  /** Claims to add or replace; `undefined` removes a default claim. */
  claims?: Record<string, unknown>;
  key?: KeyObject;
  header?: Record<string, unknown>;
};

/** A logout token signed like the IdP signs them (its key and kid), with whatever changes a test needs. */
async function logoutToken(options: TokenOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = {
    iss: idp.issuer,
    aud: 'bff',
    iat: now,
    exp: now + 120,
    jti: randomUUID(),
    events: { [BACKCHANNEL_EVENT]: {} },
    ...options.claims,
  };
  for (const [name, value] of Object.entries(payload)) if (value === undefined) delete payload[name];
  return new SignJWT(payload as JWTPayload).setProtectedHeader({ alg: 'RS256', kid: idp.signingKey.kid, typ: 'logout+jwt', ...options.header }).sign(options.key ?? idp.signingKey.privateKey);
}

function post(gatewayUrl: string, form: Record<string, string>) {
  return request(gatewayUrl).post(ENDPOINT).type('form').send(new URLSearchParams(form).toString());
}

function expectAccepted(res: request.Response): void {
  expect(res.status).toBe(200);
  expect(res.headers['cache-control']).toBe('no-store');
  expect(setCookie(res.headers, 'bff')).toBeUndefined();
}

function expectRefused(res: request.Response): void {
  expect(res.status).toBe(400);
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = JSON.parse(res.text) as Record<string, unknown>;
  expect(body.error).toBe('invalid_request');
  expect(setCookie(res.headers, 'bff')).toBeUndefined();
}

describe('sid form, sent by the IdP', () => {
  test("ends that session on both instances and leaves the same user's other IdP session alone", async () => {
    const target = await login('alice');
    const other = await login('alice');
    expect(other.sid).not.toBe(target.sid);
    await expectAlive(target);
    await expectAlive(other);

    // oidc-provider signs a real logout token (sub and sid) and POSTs it to A; it throws unless A answers 200.
    await idp.sendBackchannelLogout('alice', target.sid);

    await expectEnded(target);
    await expectAlive(other);
  });
});

describe('sub form', () => {
  test('a logout token naming only the sub ends every session of that user on both instances', async () => {
    const first = await login('bob');
    const second = await login('bob');
    const bystander = await login('alice');
    expect(first.storeId).not.toBe(second.storeId);

    const res = await post(gwB.gateway.url, { logout_token: await logoutToken({ claims: { sub: 'bob' } }) });
    expectAccepted(res);

    await expectEnded(first);
    await expectEnded(second);
    await expectAlive(bystander);
  });
});

describe('what back-channel logout reports', () => {
  function backchannelLines(gateway: TestGateway, from: number): Array<Record<string, unknown>> {
    return gateway.logs
      .slice(from)
      .join('')
      .split('\n')
      .filter((line) => line.includes('"event":"backchannel_logout"'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  test('counts the sessions it actually ended: a session that expired on its own (record gone, index entry left) does not count', async () => {
    const expired = await login('gina');
    const live = await login('gina');
    // What an idle timeout does: the store drops the record by its TTL, and nothing tells the index.
    await redis.del(expired.storeKey);
    expect(await redis.exists(expired.storeKey)).toBe(0);
    const from = gwB.logs.length;
    const before = (await scrape(gwB.gateway.adminUrl)).value('bff_backchannel_logout_sessions_total') ?? 0;

    expectAccepted(await post(gwB.gateway.url, { logout_token: await logoutToken({ claims: { sub: 'gina' } }) }));

    await expectEnded(live);
    expect(backchannelLines(gwB, from)).toEqual([expect.objectContaining({ sessions: 1, by: 'sub' })]);
    expect((await scrape(gwB.gateway.adminUrl)).value('bff_backchannel_logout_sessions_total')).toBe(before + 1);
  });

  test("a logout by sid and sub removes the session's index entries under both", async () => {
    const target = await login('hank');
    const indexed = async (): Promise<number> => {
      let count = 0;
      for (const key of await redis.keys('bff:idx:*')) if ((await redis.sMembers(key)).includes(target.storeId)) count++;
      return count;
    };
    expect(await indexed()).toBe(2);
    expectAccepted(await post(gwA.gateway.url, { logout_token: await logoutToken({ claims: { sub: 'hank', sid: target.sid } }) }));
    await expectEnded(target);
    expect(await indexed()).toBe(0);
  });
});

describe('the endpoint is server to server', () => {
  test('needs no CSRF header, ignores the cookie it is sent with, and sets none', async () => {
    const caller = await login('alice');
    const res = await request(gwA.gateway.url)
      .post(ENDPOINT)
      .type('form')
      .set('Cookie', caller.cookie)
      .send(new URLSearchParams({ logout_token: await logoutToken({ claims: { sub: `nobody-${randomUUID()}` } }) }).toString());
    expectAccepted(res);
    // The cookie's session is not the token's: it survives.
    await expectAlive(caller);
  });
});

describe('tokens that must be refused', () => {
  // A fresh session per case, so that one accepted token cannot make the next cases fail too.
  let victim: Session;
  beforeEach(async () => {
    victim = await login('carol');
  });

  const otherKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

  const cases: Array<[string, () => Promise<Record<string, string>>]> = [
    ["signed by another key (with the IdP's kid)", async () => ({ logout_token: await logoutToken({ claims: { sub: 'carol' }, key: otherKey }) })],
    ['signed by another key (with a kid of its own)', async () => ({ logout_token: await logoutToken({ claims: { sub: 'carol' }, key: otherKey, header: { kid: 'attacker' } }) })],
    [
      'expired (issued ten minutes ago)',
      async () => {
        const now = Math.floor(Date.now() / 1000);
        return { logout_token: await logoutToken({ claims: { sub: 'carol', iat: now - 600, exp: now - 300 } }) };
      },
    ],
    ['issued ten minutes ago without exp', async () => ({ logout_token: await logoutToken({ claims: { sub: 'carol', iat: Math.floor(Date.now() / 1000) - 600, exp: undefined } }) })],
    ['for another audience', async () => ({ logout_token: await logoutToken({ claims: { sub: 'carol', aud: 'some-other-client' } }) })],
    ['from another issuer', async () => ({ logout_token: await logoutToken({ claims: { sub: 'carol', iss: 'http://localhost:1' } }) })],
    ['carrying a nonce', async () => ({ logout_token: await logoutToken({ claims: { sub: 'carol', nonce: 'n-0S6_WzA2Mj' } }) })],
    ['without events', async () => ({ logout_token: await logoutToken({ claims: { sub: 'carol', events: undefined } }) })],
    ['with events but not the back-channel logout event', async () => ({ logout_token: await logoutToken({ claims: { sub: 'carol', events: { 'http://example.test/other': {} } } }) })],
    ['with neither sub nor sid', async () => ({ logout_token: await logoutToken() })],
    ['without jti', async () => ({ logout_token: await logoutToken({ claims: { sub: 'carol', jti: undefined } }) })],
    ['with the wrong typ header', async () => ({ logout_token: await logoutToken({ claims: { sub: 'carol' }, header: { typ: 'JWT' } }) })],
    [
      'unsigned (alg none)',
      async () => {
        const now = Math.floor(Date.now() / 1000);
        const claims = { iss: idp.issuer, aud: 'bff', iat: now, exp: now + 120, jti: randomUUID(), sub: 'carol', events: { [BACKCHANNEL_EVENT]: {} } };
        return { logout_token: `${b64({ alg: 'none', typ: 'logout+jwt' })}.${b64(claims)}.` };
      },
    ],
    ['a garbage string', async () => ({ logout_token: 'this-is-not-a-jwt' })],
    ['an empty logout_token', async () => ({ logout_token: '' })],
    ['no logout_token parameter at all', async () => ({ token: await logoutToken({ claims: { sub: 'carol' } }) })],
  ];

  test.each(cases)('%s: 400 invalid_request, and the session lives on', async (_name, form) => {
    expectRefused(await post(gwA.gateway.url, await form()));
    await expectAlive(victim);
  });

  test('a replayed token: the first POST is accepted, the second is refused, on either instance', async () => {
    const token = await logoutToken({ claims: { sub: `nobody-${randomUUID()}` } });
    expectAccepted(await post(gwA.gateway.url, { logout_token: token }));
    expectRefused(await post(gwA.gateway.url, { logout_token: token }));
    expectRefused(await post(gwB.gateway.url, { logout_token: token }));
  });

  test('a replay of a token that ended sessions ends nothing when it comes back', async () => {
    const first = await login('dave');
    const token = await logoutToken({ claims: { sub: 'dave' } });
    expectAccepted(await post(gwA.gateway.url, { logout_token: token }));
    await expectEnded(first);
    // A new session of the same user, which the token names too: the replay must not end it.
    const second = await login('dave');
    expectRefused(await post(gwB.gateway.url, { logout_token: token }));
    await expectAlive(second);
  });

  test('control: the same token, made valid, does end the session', async () => {
    await expectAlive(victim);
    expectAccepted(await post(gwA.gateway.url, { logout_token: await logoutToken({ claims: { sub: 'carol' } }) }));
    await expectEnded(victim);
  });
});

describe('the sid/sub index in Redis', () => {
  test('has one entry per sid and per sub for a session, each with a TTL and no user identifier in its name', async () => {
    const session = await login('alice');
    const keys = await redis.keys('bff:idx:*');
    const ours: string[] = [];
    for (const key of keys) {
      if ((await redis.sMembers(key)).includes(session.storeId)) ours.push(key);
    }
    // One for the sub, one for the sid.
    expect(ours).toHaveLength(2);
    for (const key of ours) {
      const pttl = await redis.pTTL(key);
      expect(pttl).toBeGreaterThan(0);
      // No longer than the session can live (12 h absolute timeout by default).
      expect(pttl).toBeLessThanOrEqual(12 * 3600 * 1000);
    }
    for (const key of keys) {
      expect(key).not.toContain('alice');
      expect(key).not.toContain('bob');
      expect(key).not.toContain(session.sid);
    }
  });
});
