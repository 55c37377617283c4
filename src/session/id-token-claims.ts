import { isDeepStrictEqual } from 'node:util';

/*
 * A session's `claims` are mostly a copy of its ID token's payload, which the
 * record holds anyway (logout sends it as `id_token_hint`). The record keeps
 * only how the claims differ from that payload and rebuilds them on load.
 * Decoding needs no verification: the ID token was verified at login (or at
 * the refresh that brought it), and the record it is read from is
 * authenticated by AES-GCM.
 */

/**
 * Payload members that are not claims of the session (the login leaves them
 * out). A copy of the login's list, deliberately not shared with it: this one
 * is part of the stored format, so records written today rebuild the same
 * claims whatever a later version's login keeps. A change here needs a new
 * record version.
 */
const NOT_SESSION_CLAIMS: ReadonlySet<string> = new Set(['nonce', 'at_hash', 'c_hash', 's_hash', 'auth_time', 'azp', 'aud', 'iss', 'iat', 'exp', 'nbf', 'jti']);

/** How the claims differ from the ID token's: values to set (a claim from userinfo, or one with another value) and names to leave out. */
export interface ClaimsDelta {
  set?: Record<string, unknown>;
  unset?: string[];
}

/** The claims an ID token carries, or undefined when it is no signed JWT with a JSON object for payload. */
export function idTokenClaims(idToken: string): Record<string, unknown> | undefined {
  const parts = idToken.split('.');
  // A JWS in compact form; an encrypted (5-part) ID token cannot be read without the key.
  if (parts.length !== 3) return undefined;
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(parts[1] as string, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return undefined;
  // fromEntries defines own properties: a claim named `__proto__` stays a claim.
  return Object.fromEntries(Object.entries(payload).filter(([name]) => !NOT_SESSION_CLAIMS.has(name)));
}

export function claimsDelta(claims: Readonly<Record<string, unknown>>, fromIdToken: Readonly<Record<string, unknown>>): ClaimsDelta {
  const set = Object.entries(claims).filter(([name, value]) => !Object.hasOwn(fromIdToken, name) || !isDeepStrictEqual(fromIdToken[name], value));
  const unset = Object.keys(fromIdToken).filter((name) => !Object.hasOwn(claims, name));
  return { ...(set.length > 0 ? { set: Object.fromEntries(set) } : {}), ...(unset.length > 0 ? { unset } : {}) };
}

/** The claims `delta` was taken from, in the login's order (the ID token's first, then userinfo's). */
export function applyClaimsDelta(fromIdToken: Readonly<Record<string, unknown>>, delta: ClaimsDelta): Record<string, unknown> {
  const unset = new Set(delta.unset ?? []);
  const set = delta.set ?? {};
  const kept = Object.entries(fromIdToken).map(([name, value]): [string, unknown] => [name, Object.hasOwn(set, name) ? set[name] : value]);
  const added = Object.entries(set).filter(([name]) => !Object.hasOwn(fromIdToken, name));
  return Object.fromEntries([...kept.filter(([name]) => !unset.has(name)), ...added]);
}
