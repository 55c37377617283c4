import { setTimeout as delay } from 'node:timers/promises';
import type { SessionData } from 'express-session';
import type { Logger } from 'pino';
import * as client from 'openid-client';
import { HttpProblem, problems } from '../http/problem.ts';
import { describe, type OidcClient } from '../oidc/client.ts';
import { refreshLockKey, type EncryptedStore } from '../session/encrypted-store.ts';
import { splitSessionId } from '../session/ids.ts';
import type { KeyValueStore } from '../session/kv.ts';
import type { UserSession } from '../session/types.ts';
import { isExpired, needsRefresh } from './freshness.ts';

/** Longer than the IdP request timeout (10 s), so a lock cannot expire under a refresh still in flight. */
const LOCK_TTL_MS = 15_000;
/** How long a request waits for another instance's refresh before giving up with 503. */
const WAIT_LIMIT_MS = 20_000;
const POLL_MS = 25;

export type Freshness = { ok: true; user: UserSession } | { ok: false; problem: HttpProblem };

export interface RefreshStats {
  /** Refresh grants this instance sent, by outcome. */
  onRefresh?(outcome: 'success' | 'invalid_grant' | 'error'): void;
  /** A request that needed a refresh got its tokens from another request's refresh instead. */
  onShared?(): void;
}

export interface TokenRefresherDeps {
  oidc: OidcClient;
  sessions: EncryptedStore;
  kv: KeyValueStore;
  skewMs: number;
  logger: Logger;
  stats?: RefreshStats;
}

export const sessionEnded = (): HttpProblem =>
  new HttpProblem(401, 'session_expired', 'The identity provider no longer accepts this session (it was revoked or has expired): sign in again at /auth/login.');

/**
 * Keeps a session's access token fresh, refreshing it at most once however
 * many requests ask at the same time: requests on this instance share one
 * promise, and instances share a Redis lock after which the session is read
 * again, so that an instance that waited uses the tokens another one stored.
 */
export class TokenRefresher {
  private readonly deps: TokenRefresherDeps;
  private readonly inflight = new Map<string, Promise<Freshness>>();

  constructor(deps: TokenRefresherDeps) {
    this.deps = deps;
  }

  /** The user's session with a usable access token, or the problem to answer with. */
  async fresh(sid: string, user: UserSession): Promise<Freshness> {
    const now = Date.now();
    if (!needsRefresh(user, now, this.deps.skewMs)) return { ok: true, user };
    if (!user.refreshToken) return isExpired(user, now) ? { ok: false, problem: problems.tokenExpired() } : { ok: true, user };
    const storeId = splitSessionId(sid)?.storeId;
    if (!storeId) return { ok: false, problem: problems.notAuthenticated() };
    let shared = this.inflight.get(storeId);
    if (shared) {
      this.deps.stats?.onShared?.();
      return shared;
    }
    shared = this.refreshOnce(sid, storeId).finally(() => this.inflight.delete(storeId));
    this.inflight.set(storeId, shared);
    return shared;
  }

  private async refreshOnce(sid: string, storeId: string): Promise<Freshness> {
    const { kv } = this.deps;
    const lockKey = refreshLockKey(storeId);
    const giveUpAt = Date.now() + WAIT_LIMIT_MS;
    for (;;) {
      const token = await kv.acquireLock(lockKey, LOCK_TTL_MS);
      if (token !== undefined) {
        try {
          return await this.refreshHoldingLock(sid, storeId, { key: lockKey, token });
        } finally {
          await kv.releaseLock(lockKey, token).catch(() => undefined);
        }
      }
      // Another instance is refreshing this session: wait for it, then use what it stored.
      while (await kv.isLocked(lockKey)) {
        if (Date.now() > giveUpAt) return { ok: false, problem: problems.idpUnavailable() };
        await delay(POLL_MS);
      }
      const current = await this.deps.sessions.read(sid);
      if (!current?.user) return { ok: false, problem: problems.notAuthenticated() };
      if (!needsRefresh(current.user, Date.now(), this.deps.skewMs)) {
        this.deps.stats?.onShared?.();
        return { ok: true, user: current.user };
      }
    }
  }

  private async refreshHoldingLock(sid: string, storeId: string, fence: { key: string; token: string }): Promise<Freshness> {
    const { sessions, oidc, logger, stats } = this.deps;
    // Read again under the lock: the tokens may have been refreshed since this request loaded them.
    const current: SessionData | undefined = await sessions.read(sid);
    const user = current?.user;
    if (!current || !user) return { ok: false, problem: problems.notAuthenticated() };
    if (!needsRefresh(user, Date.now(), this.deps.skewMs)) {
      stats?.onShared?.();
      return { ok: true, user };
    }
    if (!user.refreshToken) return { ok: false, problem: problems.tokenExpired() };

    let tokens;
    try {
      tokens = await oidc.refresh(user.refreshToken);
    } catch (err) {
      if (err instanceof client.ResponseBodyError && err.error === 'invalid_grant') {
        stats?.onRefresh?.('invalid_grant');
        logger.info({ event: 'refresh', outcome: 'invalid_grant' }, 'refresh token rejected; session ended');
        await sessions.destroyStoreId(storeId);
        return { ok: false, problem: sessionEnded() };
      }
      stats?.onRefresh?.('error');
      logger.warn({ event: 'refresh', outcome: 'error', reason: describe(err) }, 'token refresh failed; session kept');
      return { ok: false, problem: problems.idpUnavailable() };
    }
    stats?.onRefresh?.('success');
    const updated: UserSession = {
      ...user,
      ...tokens,
      // Without rotation the IdP sends no new refresh token: the old one stays valid.
      refreshToken: tokens.refreshToken ?? user.refreshToken,
      idToken: tokens.idToken ?? user.idToken,
      absoluteExpiresAt: Math.min(user.absoluteExpiresAt, tokens.refreshTokenExpiresAt ?? Infinity),
    };
    const written = await sessions.replace(sid, { ...current, user: updated }, fence);
    if (written === 'gone') {
      // Logged out while the refresh was in flight: do not bring the session back.
      return { ok: false, problem: problems.notAuthenticated() };
    }
    if (written === 'lost-lock') logger.warn({ event: 'refresh' }, 'refresh lock expired before the new tokens were stored; they serve this request only');
    logger.debug({ event: 'refresh', outcome: 'success' }, 'tokens refreshed');
    return { ok: true, user: updated };
  }
}
