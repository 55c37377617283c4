/** Claims that only serve the protocol; the SPA has no use for them. */
const PROTOCOL_CLAIMS: ReadonlySet<string> = new Set(['nonce', 'at_hash', 'c_hash', 's_hash', 'auth_time', 'azp', 'aud', 'iss', 'iat', 'exp', 'nbf', 'jti']);

/**
 * A session's claims as the login keeps them: the ID token's, without the
 * protocol's own members, then what userinfo adds (the ID token wins where
 * both say something: it is the verified statement).
 */
export function sessionClaims(idTokenClaims: Readonly<Record<string, unknown>>, userinfo: Readonly<Record<string, unknown>> = {}): Record<string, unknown> {
  const claims = Object.entries(idTokenClaims).filter(([name]) => !PROTOCOL_CLAIMS.has(name));
  const kept = new Set(claims.map(([name]) => name));
  // fromEntries defines own properties: a claim named `__proto__` stays a claim.
  return Object.fromEntries([...claims, ...Object.entries(userinfo).filter(([name]) => !kept.has(name))]);
}
