import type { TokenSet } from './types.ts';

/**
 * True when the access token should be refreshed before use: it expires
 * within the skew. A token that lives shorter than twice the skew is
 * refreshed at half its life instead, or it would be refreshed on every call.
 */
export function needsRefresh(tokens: TokenSet, now: number, skewMs: number): boolean {
  const expiresAt = tokens.accessTokenExpiresAt;
  if (expiresAt === undefined) return false;
  const lifetime = tokens.accessTokenIssuedAt === undefined ? Infinity : expiresAt - tokens.accessTokenIssuedAt;
  return expiresAt - now <= Math.min(skewMs, lifetime / 2);
}

export function isExpired(tokens: TokenSet, now: number): boolean {
  return tokens.accessTokenExpiresAt !== undefined && tokens.accessTokenExpiresAt <= now;
}
