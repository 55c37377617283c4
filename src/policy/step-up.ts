import type { StepUpRequirement } from '../config/types.ts';

/** How the session's user last authenticated: the ID token's `acr` and `auth_time` (epoch seconds). */
export interface Authentication {
  acr?: string;
  authTime?: number;
}

/** What a step-up lacks: the acr, or a recent enough authentication. */
export type StepUpShortfall = 'acr' | 'max_age';

/**
 * Why the session does not meet `stepUp`, or undefined when it does. A login
 * whose time the IdP did not state cannot prove it is recent: with `maxAge`
 * it needs a step-up too.
 */
export function stepUpShortfall(stepUp: StepUpRequirement, auth: Authentication, nowSec: number): StepUpShortfall | undefined {
  if (stepUp.acr !== undefined && auth.acr !== stepUp.acr) return 'acr';
  if (stepUp.maxAge !== undefined && (auth.authTime === undefined || nowSec - auth.authTime > stepUp.maxAge)) return 'max_age';
  return undefined;
}

/** `/auth/login` asking for what `stepUp` names (and only that), then back to `returnTo`. */
export function stepUpLoginUrl(stepUp: StepUpRequirement, returnTo: string): string {
  const query = new URLSearchParams();
  if (stepUp.acr !== undefined) query.set('acr_values', stepUp.acr);
  if (stepUp.maxAge !== undefined) query.set('max_age', String(stepUp.maxAge));
  query.set('returnTo', returnTo);
  return `/auth/login?${query.toString()}`;
}
