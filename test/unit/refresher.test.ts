import { describe, expect, test } from '@jest/globals';
import type { SessionData } from 'express-session';
import { pino } from 'pino';
import { IdpInvalidResponseError, IdpRefusedError, IdpUnavailableError } from '../../src/oidc/errors.ts';
import type { TokenSet } from '../../src/oidc/token-set.ts';
import { refreshLockKey } from '../../src/session/keys.ts';
import { newHandle } from '../../src/session/handles.ts';
import type { UserSession } from '../../src/session/types.ts';
import { TokenRefresher, type RouteTokenOutcome } from '../../src/tokens/refresher.ts';
import type { RouteTokenSpec } from '../../src/tokens/route-tokens.ts';
import { deferred, FakeEnder, FakeGrant, FakeLocks, FakeSessions, storeIdOf, until } from '../support/refresher-fakes.ts';

/*
 * The refresher's lock and rotation logic against in-memory fakes of its
 * narrow dependencies (src/tokens/refresher-deps.ts): no Redis, no IdP. Each
 * TokenRefresher built by `world.instance()` plays one gateway instance; they
 * share the fakes as instances share Redis. Times are relative to the real
 * clock with wide margins, and the IdP answers when a test says so.
 */

const SKEW_MS = 30_000;
const HOUR = 3_600_000;

function user(overrides: Partial<UserSession> = {}): UserSession {
  const now = Date.now();
  return {
    sub: 'alice',
    claims: { sub: 'alice' },
    createdAt: now - HOUR,
    absoluteExpiresAt: now + 8 * HOUR,
    logoutNonce: 'logout-nonce',
    idpSid: 'idp-session-1',
    tokenType: 'Bearer',
    accessToken: 'at-1',
    accessTokenIssuedAt: now - HOUR + 10_000,
    // Within the skew: due for a refresh.
    accessTokenExpiresAt: now + 10_000,
    refreshToken: 'rt-1',
    idToken: 'id-1',
    ...overrides,
  };
}

function issued(overrides: Partial<TokenSet> = {}): TokenSet {
  const now = Date.now();
  return { accessToken: 'at-2', accessTokenIssuedAt: now, accessTokenExpiresAt: now + HOUR, tokenType: 'Bearer', ...overrides };
}

function world(options: { backoffMs?: number; stored?: UserSession } = {}) {
  const locks = new FakeLocks();
  const sessions = new FakeSessions(locks);
  const ender = new FakeEnder(sessions);
  const grant = new FakeGrant();
  const logs: Array<{ level: number; msg: string; [field: string]: unknown }> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as { level: number; msg: string }) });
  const handle = newHandle();
  const loaded = options.stored ?? user();
  sessions.put(handle, { cookie: { originalMaxAge: HOUR }, user: loaded } as SessionData);
  const instance = (): TokenRefresher => new TokenRefresher({ grant, sessions, ender, locks, skewMs: SKEW_MS, logger, ...(options.backoffMs === undefined ? {} : { backoffMs: options.backoffMs }) });
  return { locks, sessions, ender, grant, logs, handle, storeId: storeIdOf(handle), loaded, instance };
}

const accessTokenOf = (outcome: Awaited<ReturnType<TokenRefresher['fresh']>>): string | undefined => (outcome.kind === 'fresh' ? outcome.user.accessToken : undefined);

describe('TokenRefresher', () => {
  test('a token that is not due is used as it is: no lock, no grant', async () => {
    const w = world({ stored: user({ accessTokenExpiresAt: Date.now() + HOUR }) });
    const outcome = await w.instance().fresh(w.handle, w.loaded);
    expect(outcome).toEqual({ kind: 'fresh', user: w.loaded });
    expect(w.grant.calls).toEqual([]);
    expect(w.locks.acquireCalls).toBe(0);
  });

  test('an expired token without a refresh token is expired; one not yet expired is still used', async () => {
    const expired = world({ stored: user({ refreshToken: undefined, accessTokenExpiresAt: Date.now() - 1000 }) });
    expect(await expired.instance().fresh(expired.handle, expired.loaded)).toEqual({ kind: 'expired' });
    const due = world({ stored: user({ refreshToken: undefined }) });
    expect(await due.instance().fresh(due.handle, due.loaded)).toEqual({ kind: 'fresh', user: due.loaded });
    expect([...expired.grant.calls, ...due.grant.calls]).toEqual([]);
  });

  test('20 concurrent requests on one instance share one lock and one grant, and all get the new token', async () => {
    const w = world();
    const answer = deferred<TokenSet>();
    w.grant.answer = () => answer.promise;
    const refresher = w.instance();
    const pending = Array.from({ length: 20 }, () => refresher.fresh(w.handle, w.loaded));
    await until(() => w.grant.calls.length > 0);
    answer.resolve(issued());
    const outcomes = await Promise.all(pending);
    expect(outcomes.map(accessTokenOf)).toEqual(Array<string>(20).fill('at-2'));
    expect(w.grant.calls).toEqual(['rt-1']);
    expect(w.locks.acquireCalls).toBe(1);
    expect(w.sessions.stored(w.handle)?.user?.accessToken).toBe('at-2');
  });

  test('another instance waits for the lock, reads the session again and uses the stored tokens without a grant', async () => {
    const w = world();
    const answer = deferred<TokenSet>();
    w.grant.answer = () => answer.promise;
    const first = w.instance().fresh(w.handle, w.loaded);
    await until(() => w.grant.calls.length > 0);
    const second = w.instance().fresh(w.handle, w.loaded);
    await until(() => w.locks.heldChecks > 0);
    answer.resolve(issued({ refreshToken: 'rt-2' }));
    const [a, b] = await Promise.all([first, second]);
    expect(accessTokenOf(a)).toBe('at-2');
    expect(b.kind === 'fresh' && b.user).toMatchObject({ accessToken: 'at-2', refreshToken: 'rt-2' });
    expect(w.grant.calls).toEqual(['rt-1']);
  });

  test('a request that loaded the session before another instance refreshed it reads it again under the lock: no second grant', async () => {
    const w = world();
    w.grant.answer = () => Promise.resolve(issued({ refreshToken: 'rt-2' }));
    expect(accessTokenOf(await w.instance().fresh(w.handle, w.loaded))).toBe('at-2');
    // The lock is free by now; this request still holds the session as it was before the refresh.
    const late = await w.instance().fresh(w.handle, w.loaded);
    expect(late.kind === 'fresh' && late.user).toMatchObject({ accessToken: 'at-2', refreshToken: 'rt-2' });
    expect(w.grant.calls).toEqual(['rt-1']);
  });

  test('rotation: the new refresh token is stored and used for the next refresh', async () => {
    const w = world();
    w.grant.answer = () => Promise.resolve(issued({ refreshToken: 'rt-2', idToken: 'id-2', accessTokenIssuedAt: Date.now() - HOUR, accessTokenExpiresAt: Date.now() + 5000 }));
    const outcome = await w.instance().fresh(w.handle, w.loaded);
    expect(outcome.kind === 'fresh' && outcome.user).toMatchObject({ accessToken: 'at-2', refreshToken: 'rt-2', idToken: 'id-2' });
    expect(w.sessions.stored(w.handle)?.user).toMatchObject({ accessToken: 'at-2', refreshToken: 'rt-2', idToken: 'id-2' });
    // The new access token is due again at once (5 s left, less than the skew): the next refresh sends the rotated token.
    const stored = w.sessions.stored(w.handle)?.user;
    if (!stored) throw new Error('session lost');
    await w.instance().fresh(w.handle, stored);
    expect(w.grant.calls).toEqual(['rt-1', 'rt-2']);
  });

  test('without rotation the old refresh token and ID token are kept; a shorter refresh-token life caps the session', async () => {
    const w = world();
    const refreshTokenExpiresAt = Date.now() + 2 * HOUR;
    w.grant.answer = () => Promise.resolve(issued({ refreshTokenExpiresAt }));
    await w.instance().fresh(w.handle, w.loaded);
    expect(w.sessions.stored(w.handle)?.user).toMatchObject({ accessToken: 'at-2', refreshToken: 'rt-1', idToken: 'id-1', absoluteExpiresAt: refreshTokenExpiresAt });
  });

  test.each([
    ['invalid_grant', 400],
    ['invalid_request', 400],
    ['unauthorized_client', 400],
    ['invalid_client', 401],
  ])('a refresh refused with %s (HTTP %s) ends the session once, whichever instance and request asked', async (error, status) => {
    const w = world();
    const answer = deferred<TokenSet>();
    w.grant.answer = () => answer.promise;
    const [a, b] = [w.instance(), w.instance()];
    const onA = Array.from({ length: 10 }, () => a.fresh(w.handle, w.loaded));
    await until(() => w.grant.calls.length > 0);
    const onB = b.fresh(w.handle, w.loaded);
    await until(() => w.locks.heldChecks > 0);
    answer.reject(new IdpRefusedError('token', error, 'refused', status));
    expect(await Promise.all(onA)).toEqual(Array<unknown>(10).fill({ kind: 'ended', reason: error }));
    // The other instance reads the session again once the lock is free, and finds it gone.
    expect(await onB).toEqual({ kind: 'gone' });
    expect(w.ender.ended).toEqual([{ storeId: w.storeId, owner: { issuer: 'https://idp.example', sub: 'alice', idpSid: 'idp-session-1' } }]);
    expect(w.grant.calls).toEqual(['rt-1']);
    expect(w.sessions.stored(w.handle)).toBeUndefined();
  });

  test.each([
    ['a 503', new IdpUnavailableError('http_503', 503)],
    ['a transport failure', new IdpUnavailableError('ECONNREFUSED')],
    ['a timeout', new IdpUnavailableError('timeout')],
    ['temporarily_unavailable', new IdpRefusedError('token', 'temporarily_unavailable', undefined, 400)],
    ['slow_down', new IdpRefusedError('token', 'slow_down', undefined, 400)],
    ['an OAuth error with a 5xx', new IdpRefusedError('token', 'server_error', undefined, 500)],
    ['an OAuth error with a 429', new IdpRefusedError('token', 'invalid_request', undefined, 429)],
    ['an invalid response', new IdpInvalidResponseError('OAUTH_RESPONSE_IS_NOT_JSON', 200)],
    ['an unexpected exception', new TypeError('boom')],
  ])('%s is transient: unavailable, session kept as it was, back-off marker set, IdP not asked again during it', async (_name, failure) => {
    const w = world();
    w.grant.answer = () => Promise.reject(failure);
    expect(await w.instance().fresh(w.handle, w.loaded)).toEqual({ kind: 'unavailable', retryAfterSec: 5 });
    expect(w.ender.ended).toEqual([]);
    expect(w.sessions.stored(w.handle)?.user).toEqual(w.loaded);
    // No write: a failed attempt must not extend the idle timeout.
    expect(w.sessions.writes).toBe(0);
    expect(w.locks.markers).toEqual([{ key: expect.stringContaining(w.storeId), value: expect.any(String), ttlMs: 5000 }]);
    // During the back-off, on this instance or another.
    for (const outcome of await Promise.all([w.instance().fresh(w.handle, w.loaded), w.instance().fresh(w.handle, w.loaded)])) {
      expect(outcome.kind === 'unavailable' && outcome.retryAfterSec >= 1 && outcome.retryAfterSec <= 5).toBe(true);
    }
    expect(w.grant.calls).toEqual(['rt-1']);
  });

  test('once the back-off is over the IdP is asked again', async () => {
    const w = world({ backoffMs: 40 });
    w.grant.answer = () => Promise.reject(new IdpUnavailableError('http_502', 502));
    expect(await w.instance().fresh(w.handle, w.loaded)).toEqual({ kind: 'unavailable', retryAfterSec: 1 });
    expect(await w.instance().fresh(w.handle, w.loaded)).toEqual({ kind: 'unavailable', retryAfterSec: 1 });
    expect(w.grant.calls).toEqual(['rt-1']);
    await new Promise((resolve) => setTimeout(resolve, 80));
    w.grant.answer = () => Promise.resolve(issued());
    expect(accessTokenOf(await w.instance().fresh(w.handle, w.loaded))).toBe('at-2');
    expect(w.grant.calls).toEqual(['rt-1', 'rt-1']);
  });

  test('a session destroyed while its refresh was in flight stays gone', async () => {
    const w = world();
    const answer = deferred<TokenSet>();
    w.grant.answer = () => answer.promise;
    const pending = w.instance().fresh(w.handle, w.loaded);
    await until(() => w.grant.calls.length > 0);
    w.sessions.destroy(w.storeId);
    answer.resolve(issued());
    expect(await pending).toEqual({ kind: 'gone' });
    expect(w.sessions.stored(w.handle)).toBeUndefined();
  });

  test('a session that ended before the lock, or a malformed session id, is gone without a grant', async () => {
    const w = world();
    w.sessions.destroy(w.storeId);
    expect(await w.instance().fresh(w.handle, w.loaded)).toEqual({ kind: 'gone' });
    expect(await w.instance().fresh('not-a-session-id', w.loaded)).toEqual({ kind: 'gone' });
    expect(w.grant.calls).toEqual([]);
  });

  test('when the lock expired under the refresh, the new tokens serve this request only and are not stored', async () => {
    const w = world();
    w.grant.answer = () => {
      w.locks.expire(refreshLockKey(w.storeId));
      return Promise.resolve(issued({ refreshToken: 'rt-2' }));
    };
    const outcome = await w.instance().fresh(w.handle, w.loaded);
    expect(outcome.kind === 'fresh' && outcome.user).toMatchObject({ accessToken: 'at-2', refreshToken: 'rt-2' });
    expect(w.sessions.writes).toBe(0);
    expect(w.sessions.stored(w.handle)?.user).toEqual(w.loaded);
    expect(w.logs).toContainEqual(expect.objectContaining({ level: 40, msg: expect.stringContaining('they serve this request only') }));
  });
});

describe('TokenRefresher: route tokens', () => {
  const RESOURCE: RouteTokenSpec = { grant: 'resource', key: 'resource:https://orders.example', resource: 'https://orders.example' };
  const EXCHANGE: RouteTokenSpec = { grant: 'exchange', key: 'exchange:orders||read', audience: 'orders', scope: 'read' };
  // The session's own token is not due in these tests unless a test says so.
  const notDue = () => user({ accessTokenExpiresAt: Date.now() + HOUR });
  const routeTokenOf = (outcome: RouteTokenOutcome): string | undefined => (outcome.kind === 'fresh' ? outcome.token.accessToken : undefined);

  test('a cached route token that is not due is used as it is: no lock, no grant', async () => {
    const cached = { accessToken: 'rt-orders', tokenType: 'Bearer', issuedAt: Date.now(), expiresAt: Date.now() + HOUR };
    const w = world({ stored: user({ routeTokens: { [RESOURCE.key]: cached } }) });
    expect(routeTokenOf(await w.instance().routeToken(w.handle, w.loaded, RESOURCE))).toBe('rt-orders');
    expect([w.grant.resourceCalls.length, w.locks.acquireCalls]).toEqual([0, 0]);
  });

  test('a resource token that is due is fetched once for 20 concurrent requests on two instances, cached, and rotation is kept', async () => {
    const due = { accessToken: 'old-orders', tokenType: 'Bearer', issuedAt: Date.now() - HOUR, expiresAt: Date.now() + 1000 };
    const w = world({ stored: user({ accessTokenExpiresAt: Date.now() + HOUR, routeTokens: { [RESOURCE.key]: due } }) });
    const answer = deferred<TokenSet>();
    w.grant.resourceAnswer = () => answer.promise;
    const [a, b] = [w.instance(), w.instance()];
    const pending = Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).routeToken(w.handle, w.loaded, RESOURCE));
    await until(() => w.grant.resourceCalls.length > 0 && w.locks.heldChecks > 0);
    answer.resolve(issued({ accessToken: 'at-orders', refreshToken: 'rt-2' }));
    expect((await Promise.all(pending)).map(routeTokenOf)).toEqual(Array<string>(20).fill('at-orders'));
    expect(w.grant.resourceCalls).toEqual([{ refreshToken: 'rt-1', resource: 'https://orders.example' }]);
    const stored = w.sessions.stored(w.handle)?.user;
    // The rotated refresh token replaces the session's in the same write; the session's own access token is untouched.
    expect(stored).toMatchObject({ accessToken: 'at-1', refreshToken: 'rt-2', routeTokens: { [RESOURCE.key]: { accessToken: 'at-orders', tokenType: 'Bearer' } } });
    expect(w.sessions.writes).toBe(1);
    expect(w.grant.calls).toEqual([]);
  });

  test('a resource the IdP refuses (invalid_target) is refused for the route; the session is kept', async () => {
    const w = world({ stored: notDue() });
    w.grant.resourceAnswer = () => Promise.reject(new IdpRefusedError('token', 'invalid_target', 'unknown resource', 400));
    expect(await w.instance().routeToken(w.handle, w.loaded, RESOURCE)).toEqual({ kind: 'refused', reason: 'invalid_target' });
    expect(w.ender.ended).toEqual([]);
    expect(w.sessions.stored(w.handle)?.user).toEqual(w.loaded);
    expect(w.logs).toContainEqual(expect.objectContaining({ event: 'route_token', reason: 'invalid_target' }));
  });

  test('a resource grant refused with invalid_grant ends the session as a refresh would', async () => {
    const w = world({ stored: notDue() });
    w.grant.resourceAnswer = () => Promise.reject(new IdpRefusedError('token', 'invalid_grant', undefined, 400));
    expect(await w.instance().routeToken(w.handle, w.loaded, RESOURCE)).toEqual({ kind: 'ended', reason: 'invalid_grant' });
    expect(w.sessions.stored(w.handle)).toBeUndefined();
  });

  test('an exchange sends the session token with the route target, caches the result, and 20 concurrent requests share it', async () => {
    const w = world({ stored: notDue() });
    const answer = deferred<TokenSet>();
    w.grant.exchangeAnswer = () => answer.promise;
    const [a, b] = [w.instance(), w.instance()];
    const pending = Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).routeToken(w.handle, w.loaded, EXCHANGE));
    await until(() => w.grant.exchangeCalls.length > 0 && w.locks.heldChecks > 0);
    answer.resolve(issued({ accessToken: 'xt-orders' }));
    expect((await Promise.all(pending)).map(routeTokenOf)).toEqual(Array<string>(20).fill('xt-orders'));
    expect(w.grant.exchangeCalls).toEqual([{ subjectToken: 'at-1', target: { audience: 'orders', scope: 'read' } }]);
    expect(w.sessions.stored(w.handle)?.user?.routeTokens?.[EXCHANGE.key]?.accessToken).toBe('xt-orders');
  });

  test('an exchange whose subject token is due refreshes it first, under the same lock, and exchanges the new one', async () => {
    const w = world();
    w.grant.answer = () => Promise.resolve(issued({ refreshToken: 'rt-2' }));
    w.grant.exchangeAnswer = () => Promise.resolve(issued({ accessToken: 'xt-orders' }));
    expect(routeTokenOf(await w.instance().routeToken(w.handle, w.loaded, EXCHANGE))).toBe('xt-orders');
    expect(w.grant.exchangeCalls.map((c) => c.subjectToken)).toEqual(['at-2']);
    expect(w.sessions.stored(w.handle)?.user).toMatchObject({ accessToken: 'at-2', refreshToken: 'rt-2' });
    expect(w.locks.acquireCalls).toBe(1);
  });

  test.each(['invalid_request', 'invalid_target', 'unauthorized_client', 'access_denied'])('an exchange refused with %s is refused; the session is kept and not refreshed', async (error) => {
    const w = world({ stored: notDue() });
    w.grant.exchangeAnswer = () => Promise.reject(new IdpRefusedError('token', error, 'no', 400));
    expect(await w.instance().routeToken(w.handle, w.loaded, EXCHANGE)).toEqual({ kind: 'refused', reason: error });
    expect([w.grant.calls, w.ender.ended, w.sessions.writes]).toEqual([[], [], 0]);
    expect(w.logs).toContainEqual(expect.objectContaining({ event: 'route_token', grant: 'exchange', reason: error }));
  });

  test.each(['invalid_grant', 'invalid_token'])('a dead subject token (%s): one forced refresh, then the exchange is tried once more', async (error) => {
    const w = world({ stored: notDue() });
    w.grant.answer = () => Promise.resolve(issued({ accessToken: 'at-2' }));
    w.grant.exchangeAnswer = (subject) => (subject === 'at-1' ? Promise.reject(new IdpRefusedError('token', error, undefined, 400)) : Promise.resolve(issued({ accessToken: 'xt-orders' })));
    expect(routeTokenOf(await w.instance().routeToken(w.handle, w.loaded, EXCHANGE))).toBe('xt-orders');
    expect(w.grant.calls).toEqual(['rt-1']);
    expect(w.grant.exchangeCalls.map((c) => c.subjectToken)).toEqual(['at-1', 'at-2']);
  });

  test('a dead subject token whose refresh the IdP refuses ends the session', async () => {
    const w = world({ stored: notDue() });
    w.grant.answer = () => Promise.reject(new IdpRefusedError('token', 'invalid_grant', undefined, 400));
    w.grant.exchangeAnswer = () => Promise.reject(new IdpRefusedError('token', 'invalid_grant', undefined, 400));
    expect(await w.instance().routeToken(w.handle, w.loaded, EXCHANGE)).toEqual({ kind: 'ended', reason: 'invalid_grant' });
    expect(w.sessions.stored(w.handle)).toBeUndefined();
    expect(w.grant.exchangeCalls).toHaveLength(1);
  });

  test('a subject token still refused after the forced refresh is refused, not retried again', async () => {
    const w = world({ stored: notDue() });
    w.grant.answer = () => Promise.resolve(issued({ accessToken: 'at-2' }));
    w.grant.exchangeAnswer = () => Promise.reject(new IdpRefusedError('token', 'invalid_grant', undefined, 400));
    expect(await w.instance().routeToken(w.handle, w.loaded, EXCHANGE)).toEqual({ kind: 'refused', reason: 'invalid_grant' });
    expect([w.grant.calls.length, w.grant.exchangeCalls.length]).toEqual([1, 2]);
    expect(w.sessions.stored(w.handle)?.user?.accessToken).toBe('at-2');
  });

  test('an exchange the IdP cannot answer is unavailable: session kept, back-off set, the IdP not asked again during it', async () => {
    const w = world({ stored: notDue() });
    w.grant.exchangeAnswer = () => Promise.reject(new IdpUnavailableError('http_500', 500));
    expect(await w.instance().routeToken(w.handle, w.loaded, EXCHANGE)).toEqual({ kind: 'unavailable', retryAfterSec: 5 });
    expect(await w.instance().routeToken(w.handle, w.loaded, EXCHANGE)).toEqual({ kind: 'unavailable', retryAfterSec: 5 });
    expect(w.grant.exchangeCalls).toHaveLength(1);
    expect([w.ender.ended, w.sessions.writes]).toEqual([[], 0]);
  });

  test('no token value ever reaches the log', async () => {
    const w = world({ stored: notDue() });
    w.grant.resourceAnswer = () => Promise.resolve(issued({ accessToken: 'secret-resource-token', refreshToken: 'secret-rotated' }));
    w.grant.exchangeAnswer = () => Promise.reject(new IdpRefusedError('token', 'invalid_target', undefined, 400));
    await w.instance().routeToken(w.handle, w.loaded, RESOURCE);
    await w.instance().routeToken(w.handle, w.loaded, EXCHANGE);
    expect(JSON.stringify(w.logs)).not.toMatch(/secret-|at-1|rt-1/);
  });
});
