import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { decodeJwt } from 'jose';
import request from 'supertest';
import { CookieJar, loginThroughGateway } from '../support/browser-flow.ts';
import { reserveGatewayUrl, startTestGateway, type TestGateway } from '../support/gateway.ts';
import { startIdp, type TestIdp } from '../support/idp.ts';
import { rawRedis, setCookie } from '../support/stack.ts';
import { sessionFate } from '../support/session-fate.ts';

const ENDPOINT = '/auth/frontchannel-logout';

let idp: TestIdp;
/** On the public URL the IdP knows. */
let gwA: TestGateway;
/** Another instance behind the same public URL, on a port of its own, sharing the Redis. */
let gwB: TestGateway;
let redis: Awaited<ReturnType<typeof rawRedis>>;
/** ID tokens the IdP issued, newest last: where the IdP's `sid` comes from, as the IdP states it. */
const idTokens: string[] = [];

beforeAll(async () => {
  const publicUrl = await reserveGatewayUrl();
  idp = await startIdp({
    redirectUris: [`${publicUrl}/auth/callback`],
    postLogoutRedirectUris: [`${publicUrl}/`],
    // oidc-provider 9 has no front-channel logout; the registration that makes it put `sid` into
    // ID tokens is back-channel's `*_session_required`, as `frontchannel_logout_session_required` does at real IdPs.
    backchannelLogoutUri: `${publicUrl}/auth/backchannel-logout`,
  });
  idp.provider.on('grant.success', (ctx) => {
    const idToken = (ctx.body as Record<string, unknown> | undefined)?.id_token;
    if (typeof idToken === 'string') idTokens.push(idToken);
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

type Session = { cookie: string; storeKey: string; sid: string; jar: CookieJar };

/**
 * A login through A. A fresh jar means a fresh IdP session (a new sid); passing the jar of
 * an earlier login reuses that IdP session, so the new gateway session shares its sid.
 */
async function login(account = 'alice', jar = new CookieJar()): Promise<Session> {
  idp.nextAccount = account;
  try {
    const issuedBefore = idTokens.length;
    const { cookieHeader } = await loginThroughGateway(gwA.url, jar);
    expect(idTokens.length).toBe(issuedBefore + 1);
    const sid = decodeJwt(idTokens[idTokens.length - 1] as string).sid;
    expect(typeof sid).toBe('string');
    const storeId = /^s:([^.]+)\./.exec(decodeURIComponent(jar.get(gwA.url, 'bff') ?? ''))?.[1];
    expect(storeId).toBeDefined();
    return { cookie: cookieHeader, storeKey: `bff:sess:{${storeId}}`, sid: sid as string, jar };
  } finally {
    idp.nextAccount = 'alice';
  }
}

const { expectAlive, expectEnded } = sessionFate(
  () => [gwA.gateway.url, gwB.gateway.url],
  () => redis,
);

/** The request the IdP's logout page makes in its iframe: a cross-site GET without the SameSite=Strict cookie. */
function frontchannel(gatewayUrl: string, query: string) {
  return request(gatewayUrl).get(`${ENDPOINT}${query}`).set('Accept', 'text/html,application/xhtml+xml,*/*;q=0.8').set('Sec-Fetch-Site', 'cross-site').set('Sec-Fetch-Dest', 'iframe');
}

const queryFor = (iss: string, sid: string): string => `?${new URLSearchParams({ iss, sid }).toString()}`;

describe('a front-channel logout from the IdP', () => {
  test("ends every gateway session of that IdP sid on both instances, and the same user's session with another sid survives", async () => {
    const target = await login('alice');
    // The same browser signs in again: the IdP keeps its session, so this gateway session has the same sid.
    const sameIdpSession = await login('alice', target.jar);
    expect(sameIdpSession.sid).toBe(target.sid);
    expect(sameIdpSession.storeKey).not.toBe(target.storeKey);
    const other = await login('alice');
    expect(other.sid).not.toBe(target.sid);
    // Both instances have the sessions in their in-process caches before the logout.
    for (const session of [target, sameIdpSession, other]) await expectAlive(session);

    // Through B, which did none of the logins.
    const res = await frontchannel(gwB.gateway.url, queryFor(idp.issuer, target.sid));
    expect(res.status).toBe(200);

    await expectEnded(target);
    await expectEnded(sameIdpSession);
    await expectAlive(other);
    const logs = gwB.logs.join('');
    expect(logs).toContain('"event":"frontchannel_logout","sessions":2');
    // The value that ends sessions is in no log line.
    expect(logs).not.toContain(target.sid);
  });

  test("the 200 page: no-store, framable by the IdP's origin only, no X-Frame-Options, no cookie set", async () => {
    const res = await frontchannel(gwA.gateway.url, queryFor(idp.issuer, 'a-sid-no-session-has'));
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.text).toContain('Signed out');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['x-frame-options']).toBeUndefined();
    const csp = String(res.headers['content-security-policy']);
    const directives = new Map(
      csp
        .split(';')
        .map((d) => d.trim().split(/\s+/))
        .map(([name = '', ...values]) => [name, values]),
    );
    expect(directives.get('frame-ancestors')).toEqual([new URL(idp.issuer).origin]);
    expect(csp.match(/frame-ancestors/g)).toHaveLength(1);
    expect(directives.get('default-src')).toEqual(["'none'"]);
    expect(setCookie(res.headers, 'bff')).toBeUndefined();
    // The other helmet headers stay.
    expect(res.headers['x-content-type-options']).toBe('nosniff');
  });

  test('needs no cookie and no CSRF header, and a session cookie sent along decides nothing', async () => {
    const bystander = await login('bob');
    const res = await frontchannel(gwA.gateway.url, queryFor(idp.issuer, 'some-other-idp-session')).set('Cookie', bystander.cookie);
    expect(res.status).toBe(200);
    await expectAlive(bystander);
  });
});

describe('requests that must end nothing', () => {
  const cases: Array<[string, (sid: string) => string]> = [
    ['another issuer', (sid) => queryFor('http://localhost:1', sid)],
    ['the issuer with a trailing slash (not the exact string)', (sid) => queryFor(`${idp.issuer}/`, sid)],
    ['the issuer in other letter case', (sid) => queryFor(idp.issuer.toUpperCase(), sid)],
    ['no iss', (sid) => `?${new URLSearchParams({ sid }).toString()}`],
    ['an empty iss', (sid) => queryFor('', sid)],
    ['no sid', () => `?${new URLSearchParams({ iss: idp.issuer }).toString()}`],
    ['an empty sid', () => queryFor(idp.issuer, '')],
    ['the sid twice', (sid) => `${queryFor(idp.issuer, sid)}&sid=${encodeURIComponent(sid)}`],
    ['no query at all', () => ''],
  ];

  test.each(cases)('%s: 400 invalid_logout_request, and the session lives on on both instances', async (_name, query) => {
    const victim = await login('carol');
    const res = await frontchannel(gwB.gateway.url, query(victim.sid));
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(res.text).code).toBe('invalid_logout_request');
    expect(res.headers['cache-control']).toBe('no-store');
    await expectAlive(victim);
  });

  test("control: the victim's own sid with the right iss does end it", async () => {
    const victim = await login('carol');
    expect((await frontchannel(gwB.gateway.url, queryFor(idp.issuer, victim.sid))).status).toBe(200);
    await expectEnded(victim);
  });
});
