import type { Logger } from 'pino';
import type { DpopPrivateJwk } from '../dpop/keys.ts';
import type { ExchangeTarget, TokenSet } from '../oidc/token-set.ts';
import type { LockFence, ReplaceResult } from '../session/records.ts';
import type { SessionOwner } from '../session/session-index.ts';
import type { RouteToken, SessionState, UserSession } from '../session/types.ts';

/*
 * Exactly what TokenRefresher needs from the rest of the gateway, so that its
 * lock and rotation logic can be specified against in-memory fakes
 * (test/unit/refresher.test.ts) without Redis or an IdP. The real classes
 * satisfy these structurally: OidcClient, SessionRepository, KeyValueStore and
 * SessionEnder are passed as they are (src/gateway.ts).
 */

/** The IdP's refresh-token grant. Failures are rejected with the errors of `src/oidc/errors.ts`. */
export interface RefreshGrant {
  /** With `resource` (RFC 8707), the access token is meant for that resource only. With `dpopKey` (the session's), the request carries a DPoP proof. */
  refresh(refreshToken: string, resource?: string, dpopKey?: DpopPrivateJwk): Promise<TokenSet>;
  /** RFC 8693 token exchange of the user's access token for one meant for `target`. */
  exchange(subjectToken: string, target: ExchangeTarget, dpopKey?: DpopPrivateJwk): Promise<TokenSet>;
  /** The issuer names the session owner in the sid/sub index: a sub or sid is unique only per issuer. */
  metadata(): { issuer: string };
}

/** The session records, by the session id the cookie carries (store id + session key). */
export interface FencedSessions {
  /** Undefined when the session does not exist (or has ended). */
  load(handle: string): Promise<SessionState | undefined>;
  /** Writes only while the session exists (never recreates one) and while `fence` still owns its lock. */
  replace(handle: string, data: SessionState, fence: LockFence): Promise<ReplaceResult>;
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

/** What became of a request's need for a route's own token (`resource` or `exchange` routes, see route-tokens.ts). */
export type RouteTokenOutcome =
  | { kind: 'fresh'; user: UserSession; token: RouteToken }
  | Exclude<Freshness, { kind: 'fresh' }>
  /** The IdP will not issue this session a token for the route (its error code, for the log); the session is kept. */
  | { kind: 'refused'; reason: string };

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
