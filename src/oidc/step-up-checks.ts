/**
 * Whether the ID token of a step-up login gives what the login asked for.
 * openid-client enforces `max_age` itself (it needs `auth_time`, and checks
 * its age with its clock tolerance); this names that failure, and checks the
 * `acr`, which openid-client leaves to the caller.
 */

/** Why a step-up login's ID token does not satisfy it (log-safe: no claim values). */
export type StepUpFault = 'acr_mismatch' | 'auth_time_missing' | 'auth_time_too_old';

/** A login that asked for `acr_values` and/or `max_age` and did not get them: no session is made of it. */
export class StepUpNotSatisfiedError extends Error {
  readonly code = 'step_up_not_satisfied';
  readonly reason: StepUpFault;
  constructor(reason: StepUpFault) {
    super(`the ID token does not satisfy the step-up the login asked for (${reason})`);
    this.reason = reason;
  }
}

/** The acr check: the ID token's `acr` must be the one asked for. */
export function acrFault(asked: string | undefined, acr: unknown): StepUpFault | undefined {
  return asked !== undefined && acr !== asked ? 'acr_mismatch' : undefined;
}

/**
 * openid-client's refusal of an ID token for its `auth_time` (missing while
 * `maxAge` was asked, or too old) as the step-up fault it is; undefined for
 * any other failure. Read from the claims openid-client attaches to its error,
 * never from its message.
 */
export function authTimeFault(err: unknown, maxAge: number | undefined): StepUpFault | undefined {
  if (maxAge === undefined) return undefined;
  let current: unknown = err;
  for (let depth = 0; depth < 4 && typeof current === 'object' && current !== null; depth++) {
    const { claims, claim } = current as { claims?: unknown; claim?: unknown };
    if (typeof claims === 'object' && claims !== null) {
      const authTime = (claims as { auth_time?: unknown }).auth_time;
      if (authTime === undefined) return 'auth_time_missing';
      return claim === 'auth_time' ? 'auth_time_too_old' : undefined;
    }
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}
