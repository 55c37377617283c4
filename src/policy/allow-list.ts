import type { RouteConfig, StepUpRequirement } from '../config/types.ts';

const WHOLE_SECONDS = /^\d{1,9}$/;

/** Why a step-up request is refused: the parameter that asks for something no route declares. */
export type UndeclaredParameter = 'acr_values' | 'max_age';

/**
 * The `acr` values and `maxAge`s that routes' `stepUp` declare: the only ones
 * `/auth/login` passes to the IdP and the only ones an upstream's challenge is
 * translated into. Anything else would turn the gateway into an open relay of
 * authentication parameters to the IdP.
 */
export class StepUpAllowList {
  readonly acrs: ReadonlySet<string>;
  readonly maxAges: ReadonlySet<number>;

  constructor(routes: readonly Pick<RouteConfig, 'stepUp'>[]) {
    this.acrs = new Set(routes.flatMap((route) => (route.stepUp?.acr === undefined ? [] : [route.stepUp.acr])));
    this.maxAges = new Set(routes.flatMap((route) => (route.stepUp?.maxAge === undefined ? [] : [route.stepUp.maxAge])));
  }

  /**
   * Reads `acr_values` and `max_age` of a login request: the step-up they ask
   * for, or the first one that is not declared. Absent parameters ask for
   * nothing; present ones (even empty, or repeated) must be declared exactly.
   */
  loginRequest(acrValues: unknown, maxAge: unknown): { stepUp: StepUpRequirement } | { undeclared: UndeclaredParameter } {
    if (acrValues !== undefined && (typeof acrValues !== 'string' || !this.acrs.has(acrValues))) return { undeclared: 'acr_values' };
    const age = maxAge === undefined ? undefined : this.maxAge(maxAge);
    if (age === null) return { undeclared: 'max_age' };
    return { stepUp: { ...(acrValues !== undefined ? { acr: acrValues } : {}), ...(age !== undefined ? { maxAge: age } : {}) } };
  }

  /**
   * An upstream's RFC 9470 challenge as a step-up the gateway may start: the
   * first declared value of its space-separated `acr_values`, its `max_age`
   * when declared. Undefined when anything it asks for is not declared, or it
   * asks for nothing.
   */
  challenge(acrValues: string | undefined, maxAge: string | undefined): StepUpRequirement | undefined {
    let acr: string | undefined;
    if (acrValues !== undefined) {
      acr = acrValues.split(' ').find((value) => this.acrs.has(value));
      if (acr === undefined) return undefined;
    }
    const age = maxAge === undefined ? undefined : this.maxAge(maxAge);
    if (age === null || (acr === undefined && age === undefined)) return undefined;
    return { ...(acr !== undefined ? { acr } : {}), ...(age !== undefined ? { maxAge: age } : {}) };
  }

  /** A declared max age in whole seconds, or null. */
  private maxAge(value: unknown): number | null {
    if (typeof value !== 'string' || !WHOLE_SECONDS.test(value)) return null;
    const seconds = Number(value);
    return this.maxAges.has(seconds) ? seconds : null;
  }
}
