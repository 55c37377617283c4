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
}

declare module 'express-session' {
  interface SessionData {
    user?: UserSession;
  }
}
