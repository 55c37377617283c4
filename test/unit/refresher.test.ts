import { describe, expect, test } from '@jest/globals';
import type { SessionData } from 'express-session';
import { pino } from 'pino';
import { IdpInvalidResponseError, IdpRefusedError, IdpUnavailableError } from '../../src/oidc/errors.ts';
import type { TokenSet } from '../../src/oidc/token-set.ts';
import { refreshLockKey } from '../../src/session/keys.ts';
import { newHandle } from '../../src/session/handles.ts';
import type { UserSession } from '../../src/session/types.ts';
import { TokenRefresher } from '../../src/tokens/refresher.ts';
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
  const logs: Array<{ level: number; msg: string }> = [];
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
