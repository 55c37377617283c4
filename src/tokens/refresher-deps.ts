import type { SessionData } from 'express-session';
import type { TokenSet } from '../oidc/token-set.ts';
import type { LockFence, ReplaceResult } from '../session/records.ts';
import type { SessionOwner } from '../session/session-index.ts';

/*
 * Exactly what TokenRefresher needs from the rest of the gateway, so that its
 * lock and rotation logic can be specified against in-memory fakes
 * (test/unit/refresher.test.ts) without Redis or an IdP. The real classes
 * satisfy these structurally: OidcClient, SessionRepository, KeyValueStore and
 * SessionEnder are passed as they are (src/gateway.ts).
 */

/** The IdP's refresh-token grant. Failures are rejected with the errors of `src/oidc/errors.ts`. */
export interface RefreshGrant {
  refresh(refreshToken: string): Promise<TokenSet>;
  /** The issuer names the session owner in the sid/sub index: a sub or sid is unique only per issuer. */
  metadata(): { issuer: string };
}

/** The session records, by the session id the cookie carries (store id + session key). */
export interface FencedSessions {
  /** Undefined when the session does not exist (or has ended). */
  load(handle: string): Promise<SessionData | undefined>;
  /** Writes only while the session exists (never recreates one) and while `fence` still owns its lock. */
  replace(handle: string, data: SessionData, fence: LockFence): Promise<ReplaceResult>;
}

/** Ends a session the IdP refused, with its index entries, so that nothing finds it afterwards. */
export interface SessionTerminator {
  end(storeId: string, owner: SessionOwner): Promise<unknown>;
}

/**
 * The state instances share to refresh a session once between them: a lock
 * that expires by itself, and the marker a failed refresh leaves so that a
 * failing IdP is not asked again during the back-off. Keyed by the refresher,
 * so that the lock key in a fence is the one the session store checks.
 */
export interface RefreshLocks {
  /** The owner's token, or undefined when someone else holds the lock. */
  acquireLock(key: string, ttlMs: number): Promise<string | undefined>;
  /** Releases the lock only if `token` still owns it. */
  releaseLock(key: string, token: string): Promise<void>;
  /** True while anyone holds the lock. */
  isLocked(key: string): Promise<boolean>;
  /** Reads a back-off marker. */
  get(key: string): Promise<string | undefined>;
  /** Sets a back-off marker that expires after `ttlMs`. */
  set(key: string, value: string, ttlMs: number): Promise<void>;
}
