import type { SessionData } from 'express-session';
import type { DpopPrivateJwk } from '../dpop/keys.ts';
import type { TokenSet } from '../oidc/token-set.ts';

/** What the gateway keeps for a signed-in browser. Lives only encrypted in the store. */
export interface UserSession extends TokenSet {
  sub: string;
  /** ID token claims (merged with userinfo), protocol-only claims removed. */
  claims: Record<string, unknown>;
  /** Epoch milliseconds. */
  createdAt: number;
  /** Epoch milliseconds after which the session is over, however active. */
  absoluteExpiresAt: number;
  /** Random value that `/auth/logout?sid=` must echo, so that a cross-site GET cannot log the user out. */
  logoutNonce: string;
  /** The IdP's `sid` claim, for back-channel logout. */
  idpSid?: string;
  /** The login's authentication context class (the ID token's `acr`), for `require.acr` and `stepUp`. */
  acr?: string;
  /** When the user last actually authenticated (the ID token's `auth_time`), epoch seconds, for `stepUp.maxAge`. */
  authTime?: number;
  /**
   * Tokens meant for one API, next to the session's own: the user's token
   * with an RFC 8707 `resource`, or one exchanged (RFC 8693) for a route.
   * Keyed by what was asked for (see tokens/), kept until due.
   */
  routeTokens?: Record<string, RouteToken>;
  /**
   * `BFF_DPOP=true`: the session's DPoP private key (JWK), made at login. It
   * lives only here, inside the encrypted record: every token of the session
   * is bound to it, and every upstream request carries a proof signed with it.
   */
  dpopKey?: DpopPrivateJwk;
}

/** A token obtained for one API on the user's behalf. */
export interface RouteToken {
  accessToken: string;
  tokenType: string;
  /** Epoch milliseconds; absent when the IdP did not say (the token is then kept as long as the session's own). */
  expiresAt?: number;
  /** Epoch milliseconds. */
  issuedAt: number;
}

/**
 * A session as the gateway keeps it: express-session's SessionData without
 * the cookie, which is express-session's own business (express-store.ts
 * gives it one back) and not stored.
 */
export type SessionState = Omit<SessionData, 'cookie'>;

declare module 'express-session' {
  interface SessionData {
    user?: UserSession;
  }
}
