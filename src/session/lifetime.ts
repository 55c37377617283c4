/**
 * A session's absolute deadline: the configured cap, never later than the
 * refresh token lives when the IdP says how long that is (the session never
 * outlives its refresh token). Applied at login and again at every refresh,
 * since a rotated refresh token may come with a shorter life.
 */
export function absoluteDeadline(cap: number, refreshTokenExpiresAt: number | undefined): number {
  return Math.min(cap, refreshTokenExpiresAt ?? Infinity);
}
