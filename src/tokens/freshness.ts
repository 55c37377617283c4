import type { TokenSet } from '../oidc/token-set.ts';

/**
 * True when the access token should be refreshed before use: it expires
 * within the skew. A token that lives shorter than twice the skew is
 * refreshed at half its life instead, or it would be refreshed on every call.
 */
export function needsRefresh(tokens: TokenSet, now: number, skewMs: number): boolean {
  const expiresAt = tokens.accessTokenExpiresAt;
  if (expiresAt === undefined) return false;
  return now >= renewalTime(expiresAt, tokens.accessTokenIssuedAt, skewMs);
}

/**
 * When a token is due for renewal: `skewMs` before it expires, or at half its
 * life when it lives shorter than twice the skew. The one rule for user and
 * client-credentials tokens alike.
 */
export function renewalTime(expiresAt: number, issuedAt: number | undefined, skewMs: number): number {
  const lifetime = issuedAt === undefined ? Infinity : expiresAt - issuedAt;
  return expiresAt - Math.min(skewMs, lifetime / 2);
}

export function isExpired(tokens: TokenSet, now: number): boolean {
  return tokens.accessTokenExpiresAt !== undefined && tokens.accessTokenExpiresAt <= now;
}
