import { setTimeout as delay } from 'node:timers/promises';
import { IdpInvalidResponseError, isIdpError, type IdpError } from '../oidc/errors.ts';
import { refreshBackoffKey as backoffKey, refreshLockKey } from '../session/keys.ts';
import { parseHandle } from '../session/handles.ts';
import { forSession } from '../store/errors.ts';
import type { SessionState, UserSession } from '../session/types.ts';
import { isExpired, needsRefresh } from './freshness.ts';
import { idpSaidNo } from './refresh-policy.ts';
import type { TokenSet } from '../oidc/token-set.ts';
import { absoluteDeadline } from '../session/lifetime.ts';
import type { LockFence } from '../session/records.ts';
import type { Freshness, RouteTokenOutcome, TokenRefresherDeps } from './refresher-deps.ts';
import { refusedForTheResource, routeTokenDue, subjectTokenRefused, toRouteToken, type RouteTokenSpec } from './route-tokens.ts';

/** Longer than the IdP request timeout (10 s), so a lock cannot expire under a refresh still in flight. */
const LOCK_TTL_MS = 15_000;
/** How long a request waits for another instance's refresh before giving up with 503. */
const WAIT_LIMIT_MS = 20_000;
const POLL_MS = 25;
/** After a transient failure, the IdP is not asked again for that session (on any instance) for this long. */
export const REFRESH_BACKOFF_MS = 5_000;

export type { Freshness, RefreshOutcome, RefreshStats, RouteTokenOutcome, TokenRefresherDeps } from './refresher-deps.ts';

/** Operators search the log for these (docs/operations.md quotes the first). */
const FAILED_MESSAGES = {
  refresh: 'token refresh failed; session kept',
  resource: 'resource-bound token request failed; session kept',
  exchange: 'token exchange failed; session kept',
} as const;

/** A session read under its lock: what the work does, it does to `current`, and writes under `fence`. */
interface Held {
  handle: string;
  storeId: string;
  fence: LockFence;
  current: SessionState & { user: UserSession };
}

type Gone = { kind: 'gone' };
type Unavailable = { kind: 'unavailable'; retryAfterSec: number };
const GONE: Gone = { kind: 'gone' };

/**
 * Keeps a session's tokens fresh — its own access token and the route tokens
 * cached beside it — asking the IdP at most once however many requests need
 * the same token at the same time: requests on this instance share one
 * promise, and instances share one Redis lock per session after which the
 * session is read again, so that an instance that waited uses what another
 * one stored. Every grant for a session (refresh, resource, exchange) runs
 * under that one lock, since with rotation each may replace the refresh token.
 * A grant that failed transiently leaves a short-lived marker in the store,
 * so that a failing IdP is asked at most once per back-off per session,
 * across instances.
 */
export class TokenRefresher {
  private readonly deps: TokenRefresherDeps;
  private readonly backoffMs: number;
  private readonly inflight = new Map<string, Promise<Freshness>>();
  private readonly routeInflight = new Map<string, Promise<RouteTokenOutcome>>();

  constructor(deps: TokenRefresherDeps) {
    this.deps = deps;
    this.backoffMs = deps.backoffMs ?? REFRESH_BACKOFF_MS;
  }

  /** The user's session with a usable access token, or what prevents it. */
  async fresh(handle: string, user: UserSession): Promise<Freshness> {
    const now = Date.now();
    if (!needsRefresh(user, now, this.deps.skewMs)) return { kind: 'fresh', user };
    if (!user.refreshToken) return isExpired(user, now) ? { kind: 'expired' } : { kind: 'fresh', user };
    const storeId = parseHandle(handle)?.storeId;
    if (!storeId) return GONE;
    let shared = this.inflight.get(storeId);
    if (shared) {
      this.deps.stats?.onShared?.();
      return shared;
    }
    const done = (current: UserSession): Freshness | undefined => {
      if (needsRefresh(current, Date.now(), this.deps.skewMs)) return undefined;
      this.deps.stats?.onShared?.();
      return { kind: 'fresh', user: current };
    };
    shared = this.underSessionLock(handle, storeId, done, (held) => this.refreshHoldingLock(held)).finally(() => this.inflight.delete(storeId));
    this.inflight.set(storeId, shared);
    return shared;
  }

  /** The route's own token (cached in the session until due), or what prevents it. */
  async routeToken(handle: string, user: UserSession, spec: RouteTokenSpec): Promise<RouteTokenOutcome> {
    const cached = this.cachedRouteToken(user, spec);
    if (cached) return cached;
    const storeId = parseHandle(handle)?.storeId;
    if (!storeId) return GONE;
    const flight = `${storeId}\n${spec.key}`;
    let shared = this.routeInflight.get(flight);
    if (shared) return shared;
    const work = (held: Held): Promise<RouteTokenOutcome> => (spec.grant === 'resource' ? this.resourceHoldingLock(held, spec) : this.exchangeHoldingLock(held, spec));
    shared = this.underSessionLock(handle, storeId, (current) => this.cachedRouteToken(current, spec), work).finally(() => this.routeInflight.delete(flight));
    this.routeInflight.set(flight, shared);
    return shared;
  }

  private cachedRouteToken(user: UserSession, spec: RouteTokenSpec): RouteTokenOutcome | undefined {
    const token = user.routeTokens?.[spec.key];
    return token && !routeTokenDue(token, Date.now(), this.deps.skewMs) ? { kind: 'fresh', user, token } : undefined;
  }

  /**
   * The one place the session lock is taken. Holding it, the session is read
   * again and `work` runs only if that read is not `done` already; without
   * it, the request waits for the holder, reads the session again and uses
   * what the holder stored, or tries for the lock itself.
   */
  private async underSessionLock<T>(handle: string, storeId: string, done: (user: UserSession) => T | undefined, work: (held: Held) => Promise<T>): Promise<T | Gone | Unavailable> {
    const { locks, sessions } = this.deps;
    const lockKey = refreshLockKey(storeId);
    const giveUpAt = Date.now() + WAIT_LIMIT_MS;
    for (;;) {
      const token = await forSession(locks.acquireLock(lockKey, LOCK_TTL_MS));
      if (token !== undefined) {
        try {
          const current = await sessions.load(handle);
          if (!current?.user) return GONE;
          return done(current.user) ?? (await work({ handle, storeId, fence: { key: lockKey, token }, current: { ...current, user: current.user } }));
        } finally {
          await locks.releaseLock(lockKey, token).catch(() => undefined);
        }
      }
      // Another request holds the session's lock: wait for it, then use what it stored.
      while (await forSession(locks.isLocked(lockKey))) {
        if (Date.now() > giveUpAt) return { kind: 'unavailable', retryAfterSec: Math.ceil(this.backoffMs / 1000) };
        await delay(POLL_MS);
      }
      const current = await sessions.load(handle);
      if (!current?.user) return GONE;
      const result = done(current.user);
      if (result !== undefined) return result;
    }
  }

  private async refreshHoldingLock(held: Held): Promise<Freshness> {
    return (await this.backoff(held.storeId)) ?? this.renew(held);
  }

  /** Holding the lock: the refresh-token grant, whether or not the access token is due, and the write. */
  private async renew(held: Held): Promise<Freshness> {
    const { grant, logger, stats } = this.deps;
    const { user } = held.current;
    if (!user.refreshToken) return { kind: 'expired' };
    let tokens: TokenSet;
    try {
      tokens = await grant.refresh(user.refreshToken, undefined, user.dpopKey);
    } catch (err) {
      const failure = asIdpError(err);
      stats?.onRefresh?.(idpSaidNo(failure) ? 'refused' : 'error');
      return idpSaidNo(failure) ? this.endSession(held, failure, 'refresh') : this.transient(held, failure, 'refresh');
    }
    stats?.onRefresh?.('success');
    const updated: UserSession = {
      ...user,
      ...tokens,
      // Without rotation the IdP sends no new refresh token: the old one stays valid.
      refreshToken: tokens.refreshToken ?? user.refreshToken,
      idToken: tokens.idToken ?? user.idToken,
      absoluteExpiresAt: absoluteDeadline(user.absoluteExpiresAt, tokens.refreshTokenExpiresAt),
    };
    if ((await this.store(held, updated)) === 'gone') return GONE;
    logger.debug({ event: 'refresh', outcome: 'success' }, 'tokens refreshed');
    return { kind: 'fresh', user: updated };
  }

  /** RFC 8707: a refresh-token grant carrying `resource`; its access token is the route's, a rotated refresh token the session's. */
  private async resourceHoldingLock(held: Held, spec: RouteTokenSpec & { grant: 'resource' }): Promise<RouteTokenOutcome> {
    const { grant, logger } = this.deps;
    const { user } = held.current;
    if (!user.refreshToken) {
      logger.warn(
        { event: 'route_token', grant: 'resource', outcome: 'refused', reason: 'no_refresh_token' },
        'a resource route needs a refresh token; the IdP issued none at login (offline_access?)',
      );
      return { kind: 'refused', reason: 'no_refresh_token' };
    }
    const blocked = await this.backoff(held.storeId);
    if (blocked) return blocked;
    let tokens: TokenSet;
    try {
      tokens = await grant.refresh(user.refreshToken, spec.resource, user.dpopKey);
    } catch (err) {
      const failure = asIdpError(err);
      if (refusedForTheResource(failure)) return this.refused(failure, 'resource');
      return idpSaidNo(failure) ? this.endSession(held, failure, 'resource') : this.transient(held, failure, 'resource');
    }
    return this.storeRouteToken(held, spec, tokens, {
      refreshToken: tokens.refreshToken ?? user.refreshToken,
      absoluteExpiresAt: absoluteDeadline(user.absoluteExpiresAt, tokens.refreshTokenExpiresAt),
    });
  }

  /**
   * RFC 8693: the session's access token (renewed first when due) exchanged
   * for the route's. A subject token the IdP calls dead is renewed once, and
   * the exchange tried once more.
   */
  private async exchangeHoldingLock(held: Held, spec: RouteTokenSpec & { grant: 'exchange' }): Promise<RouteTokenOutcome> {
    const blocked = await this.backoff(held.storeId);
    if (blocked) return blocked;
    let user = held.current.user;
    const now = Date.now();
    if (needsRefresh(user, now, this.deps.skewMs) && user.refreshToken) {
      const renewed = await this.renew(held);
      if (renewed.kind !== 'fresh') return renewed;
      user = renewed.user;
    } else if (isExpired(user, now)) {
      return { kind: 'expired' };
    }
    const { audience, resource, scope } = spec;
    const target = { ...(audience !== undefined ? { audience } : {}), ...(resource !== undefined ? { resource } : {}), ...(scope !== undefined ? { scope } : {}) };
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await this.storeRouteToken(held, spec, await this.deps.grant.exchange(user.accessToken, target, user.dpopKey), {});
      } catch (err) {
        const failure = asIdpError(err);
        if (attempt === 1 && subjectTokenRefused(failure)) {
          this.deps.logger.info({ event: 'token_exchange', outcome: 'subject_refused', reason: failure.reason }, "the IdP refused the session's access token for an exchange; renewing it once");
          const renewed = await this.renew(held);
          if (renewed.kind !== 'fresh') return renewed;
          user = renewed.user;
          continue;
        }
        return idpSaidNo(failure) ? this.refused(failure, 'exchange') : this.transient(held, failure, 'exchange');
      }
    }
  }

  private async storeRouteToken(held: Held, spec: RouteTokenSpec, tokens: TokenSet, sessionChanges: Partial<UserSession>): Promise<RouteTokenOutcome> {
    const token = toRouteToken(tokens, Date.now());
    const { user } = held.current;
    const updated: UserSession = { ...user, ...sessionChanges, routeTokens: { ...user.routeTokens, [spec.key]: token } };
    if ((await this.store(held, updated)) === 'gone') return GONE;
    this.deps.logger.debug({ event: 'route_token', grant: spec.grant, outcome: 'success' }, 'route token obtained');
    return { kind: 'fresh', user: updated, token };
  }

  /** Writes the session under the fence; what was written is what later work under the same lock builds on. */
  private async store(held: Held, user: UserSession): Promise<'ok' | 'gone'> {
    const written = await this.deps.sessions.replace(held.handle, { ...held.current, user }, held.fence);
    // Logged out while the grant was in flight: do not bring the session back.
    if (written === 'gone') return 'gone';
    if (written === 'lost-lock') this.deps.logger.warn({ event: 'refresh' }, 'refresh lock expired before the new tokens were stored; they serve this request only');
    held.current = { ...held.current, user };
    return 'ok';
  }

  private async endSession(held: Held, failure: IdpError, event: 'refresh' | 'resource'): Promise<{ kind: 'ended'; reason: string }> {
    const { logger, grant } = this.deps;
    const { user } = held.current;
    logger.info({ event, outcome: 'refused', reason: failure.reason, status: failure.status }, 'refresh token rejected; session ended');
    await this.deps.ender.end(held.storeId, { issuer: grant.metadata().issuer, sub: user.sub, ...(user.idpSid ? { idpSid: user.idpSid } : {}) });
    return { kind: 'ended', reason: failure.reason };
  }

  private refused(failure: IdpError, grant: 'resource' | 'exchange'): { kind: 'refused'; reason: string } {
    this.deps.logger.warn(
      { event: 'route_token', grant, outcome: 'refused', reason: failure.reason, status: failure.status },
      `the IdP refused the ${grant === 'resource' ? 'resource-bound token' : 'token exchange'} for a route; session kept`,
    );
    return { kind: 'refused', reason: failure.reason };
  }

  private async transient(held: Held, failure: IdpError, event: 'refresh' | 'resource' | 'exchange'): Promise<Unavailable> {
    this.deps.logger.warn({ event, outcome: 'error', reason: failure.reason, status: failure.status, retryInMs: this.backoffMs }, FAILED_MESSAGES[event]);
    // Best effort: without the marker the next request asks the IdP again, which is what happened before it existed.
    await this.deps.locks.set(backoffKey(held.storeId), String(Date.now() + this.backoffMs), this.backoffMs).catch(() => undefined);
    return { kind: 'unavailable', retryAfterSec: Math.ceil(this.backoffMs / 1000) };
  }

  /** Under the lock, so that the instance that set the marker has released the lock only after setting it. */
  private async backoff(storeId: string): Promise<Unavailable | undefined> {
    const until = Number(await forSession(this.deps.locks.get(backoffKey(storeId))));
    const leftMs = Number.isFinite(until) ? Math.max(0, until - Date.now()) : 0;
    if (leftMs <= 0) return undefined;
    this.deps.logger.debug({ event: 'refresh', outcome: 'backoff', retryInMs: leftMs }, 'token refresh not attempted: it failed moments ago; session kept');
    return { kind: 'unavailable', retryAfterSec: Math.max(1, Math.ceil(leftMs / 1000)) };
  }
}

function asIdpError(err: unknown): IdpError {
  return isIdpError(err) ? err : new IdpInvalidResponseError('unexpected_error', undefined, err);
}
