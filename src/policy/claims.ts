import type { ClaimRule, ClaimValue, RouteRequirement } from '../config/types.ts';

/** What a session is judged on: its claims and the `acr` of its login. */
export interface SessionFacts {
  claims: Readonly<Record<string, unknown>>;
  acr?: string;
}

/** Which part of a `require` a session failed, and for `claims` which claim (its name only: values stay out of logs and answers). */
export type RequirementFailure = { rule: 'claims'; claim: string } | { rule: 'acr' };

/**
 * A scalar rule is plain equality, type included (`true` is not `"true"`, `1`
 * is not `"1"`): an IdP that sends a string where the rule has a boolean is a
 * configuration to fix, not something to guess around. A list rule holds when
 * the claim equals one of the values or, for an array claim, shares one.
 */
export function claimRuleHolds(claim: unknown, rule: ClaimRule): boolean {
  if (!Array.isArray(rule)) return claim === rule;
  const wanted: readonly ClaimValue[] = rule;
  if (Array.isArray(claim)) return claim.some((value) => wanted.includes(value as ClaimValue));
  return wanted.includes(claim as ClaimValue);
}

/** The first part of `require` the session fails, or undefined when it meets all of it. */
export function requirementFailure(requirement: RouteRequirement, session: SessionFacts): RequirementFailure | undefined {
  for (const [claim, rule] of Object.entries(requirement.claims ?? {})) {
    // Own properties only: a claim named `constructor` or `__proto__` must not be found on the prototype.
    const value = Object.hasOwn(session.claims, claim) ? session.claims[claim] : undefined;
    if (!claimRuleHolds(value, rule)) return { rule: 'claims', claim };
  }
  if (requirement.acr !== undefined && (session.acr === undefined || !requirement.acr.includes(session.acr))) return { rule: 'acr' };
  return undefined;
}
