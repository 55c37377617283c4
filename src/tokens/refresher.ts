import { setTimeout as delay } from 'node:timers/promises';
import type { SessionData } from 'express-session';
import type { Logger } from 'pino';
import { IdpInvalidResponseError, isIdpError, type IdpError } from '../oidc/errors.ts';
import { refreshBackoffKey as backoffKey, refreshLockKey } from '../session/keys.ts';
import { parseHandle } from '../session/handles.ts';
import { forSession } from '../store/errors.ts';
import type { UserSession } from '../session/types.ts';
import { isExpired, needsRefresh } from './freshness.ts';
import { refreshFailureEndsSession } from './refresh-policy.ts';
import type { TokenSet } from '../oidc/token-set.ts';
import { absoluteDeadline } from '../session/lifetime.ts';
import type { FencedSessions, RefreshGrant, RefreshLocks, SessionTerminator } from './refresher-deps.ts';

/** Longer than the IdP request timeout (10 s), so a lock cannot expire under a refresh still in flight. */
const LOCK_TTL_MS = 15_000;
/** How long a request waits for another instance's refresh before giving up with 503. */
const WAIT_LIMIT_MS = 20_000;
const POLL_MS = 25;
/** After a transient failure, the IdP is not asked again for that session (on any instance) for this long. */
export const REFRESH_BACKOFF_MS = 5_000;

/**
 * What became of a request's need for a fresh access token. Plain outcomes:
 * the proxy path (`src/proxy/credentials.ts`) turns them into HTTP answers.
 */
export type Freshness =
  /** The tokens are fresh (refreshed now, by another request, or not due yet). */
  | { kind: 'fresh'; user: UserSession }
  /** The IdP refused the refresh: the session has been ended everywhere. */
  | { kind: 'ended'; reason: string }
  /** The session is gone (logged out, expired) or the cookie names none. */
  | { kind: 'gone' }
  /** The access token has expired and there is no refresh token to renew it. */
  | { kind: 'expired' }
  /** The IdP cannot answer now (or failed moments ago): the session is kept; try again after `retryAfterSec`. */
  | { kind: 'unavailable'; retryAfterSec: number };

export type RefreshOutcome = 'success' | 'refused' | 'error';

export interface RefreshStats {
  /** Refresh grants this instance sent, by outcome: success, refused (the session ended), error (transient). */
  onRefresh?(outcome: RefreshOutcome): void;
  /** A request that needed a refresh got its tokens from another request's refresh instead. */
  onShared?(): void;
}

export interface TokenRefresherDeps {
  grant: RefreshGrant;
  sessions: FencedSessions;
  /** Ends a session the IdP refused, with its index entries. */
  ender: SessionTerminator;
  locks: RefreshLocks;
  skewMs: number;
  logger: Logger;
  stats?: RefreshStats;
  /** Default REFRESH_BACKOFF_MS. */
  backoffMs?: number;
}

/**
 * Keeps a session's access token fresh, refreshing it at most once however
 * many requests ask at the same time: requests on this instance share one
 * promise, and instances share a Redis lock after which the session is read
 * again, so that an instance that waited uses the tokens another one stored.
 * A refresh that failed transiently leaves a short-lived marker in the store,
 * so that a failing IdP is asked at most once per back-off per session,
 * across instances.
 */
export class TokenRefresher {
  private readonly deps: TokenRefresherDeps;
  private readonly backoffMs: number;
  private readonly inflight = new Map<string, Promise<Freshness>>();

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
    if (!storeId) return { kind: 'gone' };
    let shared = this.inflight.get(storeId);
    if (shared) {
      this.deps.stats?.onShared?.();
      return shared;
    }
    shared = this.refreshOnce(handle, storeId).finally(() => this.inflight.delete(storeId));
    this.inflight.set(storeId, shared);
    return shared;
  }

  private async refreshOnce(handle: string, storeId: string): Promise<Freshness> {
    const { locks } = this.deps;
    const lockKey = refreshLockKey(storeId);
    const giveUpAt = Date.now() + WAIT_LIMIT_MS;
    for (;;) {
      const token = await forSession(locks.acquireLock(lockKey, LOCK_TTL_MS));
      if (token !== undefined) {
        try {
          return await this.refreshHoldingLock(handle, storeId, { key: lockKey, token });
        } finally {
          await locks.releaseLock(lockKey, token).catch(() => undefined);
        }
      }
      // Another instance is refreshing this session: wait for it, then use what it stored.
      while (await forSession(locks.isLocked(lockKey))) {
        if (Date.now() > giveUpAt) return { kind: 'unavailable', retryAfterSec: Math.ceil(this.backoffMs / 1000) };
        await delay(POLL_MS);
      }
      const current = await this.deps.sessions.load(handle);
      if (!current?.user) return { kind: 'gone' };
      if (!needsRefresh(current.user, Date.now(), this.deps.skewMs)) {
        this.deps.stats?.onShared?.();
        return { kind: 'fresh', user: current.user };
      }
    }
  }

  private async refreshHoldingLock(handle: string, storeId: string, fence: { key: string; token: string }): Promise<Freshness> {
    const { sessions, grant, locks, logger, stats } = this.deps;
    // Read again under the lock: the tokens may have been refreshed since this request loaded them.
    const current: SessionData | undefined = await sessions.load(handle);
    const user = current?.user;
    if (!current || !user) return { kind: 'gone' };
    if (!needsRefresh(user, Date.now(), this.deps.skewMs)) {
      stats?.onShared?.();
      return { kind: 'fresh', user };
    }
    if (!user.refreshToken) return { kind: 'expired' };
    // Under the lock, so that the instance that set it has released the lock only after setting it.
    const backoffLeftMs = await this.backoffLeft(storeId);
    if (backoffLeftMs > 0) {
      logger.debug({ event: 'refresh', outcome: 'backoff', retryInMs: backoffLeftMs }, 'token refresh not attempted: it failed moments ago; session kept');
      return { kind: 'unavailable', retryAfterSec: Math.max(1, Math.ceil(backoffLeftMs / 1000)) };
    }

    let tokens: TokenSet;
    try {
      tokens = await grant.refresh(user.refreshToken);
    } catch (err) {
      const failure: IdpError = isIdpError(err) ? err : new IdpInvalidResponseError('unexpected_error', undefined, err);
      if (refreshFailureEndsSession(failure)) {
        stats?.onRefresh?.('refused');
        logger.info({ event: 'refresh', outcome: 'refused', reason: failure.reason, status: failure.status }, 'refresh token rejected; session ended');
        await this.deps.ender.end(storeId, { issuer: grant.metadata().issuer, sub: user.sub, ...(user.idpSid ? { idpSid: user.idpSid } : {}) });
        return { kind: 'ended', reason: failure.reason };
      }
      stats?.onRefresh?.('error');
      logger.warn({ event: 'refresh', outcome: 'error', reason: failure.reason, status: failure.status, retryInMs: this.backoffMs }, 'token refresh failed; session kept');
      // Best effort: without the marker the next request asks the IdP again, which is what happened before it existed.
      await locks.set(backoffKey(storeId), String(Date.now() + this.backoffMs), this.backoffMs).catch(() => undefined);
      return { kind: 'unavailable', retryAfterSec: Math.ceil(this.backoffMs / 1000) };
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
    const written = await sessions.replace(handle, { ...current, user: updated }, fence);
    if (written === 'gone') {
      // Logged out while the refresh was in flight: do not bring the session back.
      return { kind: 'gone' };
    }
    if (written === 'lost-lock') logger.warn({ event: 'refresh' }, 'refresh lock expired before the new tokens were stored; they serve this request only');
    logger.debug({ event: 'refresh', outcome: 'success' }, 'tokens refreshed');
    return { kind: 'fresh', user: updated };
  }

  /** Milliseconds until the session's back-off ends; 0 when there is none. */
  private async backoffLeft(storeId: string): Promise<number> {
    const until = Number(await forSession(this.deps.locks.get(backoffKey(storeId))));
    return Number.isFinite(until) ? Math.max(0, until - Date.now()) : 0;
  }
}
