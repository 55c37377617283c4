import type { DpopPrivateJwk } from '../dpop/keys.ts';
import type { TokenSet } from './token-set.ts';

/** What a login needs to remember until the callback. */
export interface LoginChecks {
  state: string;
  nonce: string;
  codeVerifier: string;
  /** A step-up login's `acr_values` (one value), which the ID token's `acr` must equal. */
  acrValues?: string;
  /** A step-up login's `max_age` (seconds), which the ID token's `auth_time` must meet. */
  maxAge?: number;
  /** `BFF_DPOP=true`: the session's DPoP key, made before the authorization request (PAR proof, `dpop_jkt`). */
  dpopKey?: DpopPrivateJwk;
}

/** What a login asks the IdP for besides signing in. */
export interface LoginOptions {
  prompt?: string;
  acrValues?: string;
  maxAge?: number;
}

export interface LoginResult {
  tokens: TokenSet;
  sub: string;
  claims: Record<string, unknown>;
  idpSid?: string;
  /** The ID token's `acr`. */
  acr?: string;
  /** The ID token's `auth_time`, epoch seconds. */
  authTime?: number;
}
