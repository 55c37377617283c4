import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { RouteConfig, StepUpRequirement } from '../config/types.ts';
import { problems } from '../http/problem-catalogue.ts';
import type { HttpProblem } from '../http/problem.ts';
import { safeReturnTo } from '../http/return-to.ts';
import { requirementFailure } from '../policy/claims.ts';
import { stepUpLoginUrl, stepUpShortfall } from '../policy/step-up.ts';
import type { UserSession } from '../session/types.ts';

/**
 * A route's `require` and `stepUp`, judged on the loaded session before
 * anything else is done for the request (no refresh, no upstream
 * connection). Answers name the route, never a claim value; the log names
 * the rule and the claim, never its value.
 */
export class RoutePolicy {
  private readonly publicOrigin: string;
  private readonly logger: Logger;

  constructor(publicOrigin: string, logger: Logger) {
    this.publicOrigin = publicOrigin;
    this.logger = logger;
  }

  /** The problem to answer when the session may not use the route; undefined when it may. */
  refusal(route: RouteConfig, user: UserSession, req: IncomingMessage): HttpProblem | undefined {
    if (route.require !== undefined) {
      const failed = requirementFailure(route.require, { claims: user.claims, ...(user.acr !== undefined ? { acr: user.acr } : {}) });
      if (failed !== undefined) {
        this.logger.info({ route: route.prefix, ...failed }, 'route refused: the session does not meet its require rules');
        return problems.forbidden(route.prefix);
      }
    }
    if (route.stepUp !== undefined) {
      const auth = { ...(user.acr !== undefined ? { acr: user.acr } : {}), ...(user.authTime !== undefined ? { authTime: user.authTime } : {}) };
      const missing = stepUpShortfall(route.stepUp, auth, Math.floor(Date.now() / 1000));
      if (missing !== undefined) {
        this.logger.info({ route: route.prefix, missing }, 'route needs a step-up sign-in');
        return this.stepUpRequired(route.stepUp, req);
      }
    }
    return undefined;
  }

  /** `step_up_required`, whose `loginUrl` comes back to the page that made the request. */
  stepUpRequired(stepUp: StepUpRequirement, req: IncomingMessage): HttpProblem {
    return problems.stepUpRequired(stepUpLoginUrl(stepUp, refererReturnTo(req.headers.referer, this.publicOrigin)));
  }
}

/**
 * The page that made an API request, as a `returnTo`: the path and query of
 * a same-origin `Referer`, through the same guard as `/auth/login`'s own
 * parameter; `/` for anything else (no Referer, another origin, a policy that
 * strips it).
 */
export function refererReturnTo(referer: string | undefined, publicOrigin: string): string {
  if (referer === undefined) return '/';
  let url: URL;
  try {
    url = new URL(referer);
  } catch {
    return '/';
  }
  if (url.origin !== publicOrigin) return '/';
  return safeReturnTo(url.pathname + url.search, publicOrigin);
}
