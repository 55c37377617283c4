import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { RouteConfig } from '../config/types.ts';
import { problems } from '../http/problem-catalogue.ts';
import type { HttpProblem } from '../http/problem.ts';
import type { StepUpAllowList } from '../policy/allow-list.ts';
import { insufficientUserAuthentication } from '../policy/www-authenticate.ts';
import type { RoutePolicy } from './route-policy.ts';

/** Upstream-chosen text goes into a log line only when it is short and plain. */
const LOGGABLE = /^[\x21-\x7e ]{1,200}$/;

/**
 * Turns an upstream's RFC 9470 challenge (`401`, `WWW-Authenticate: Bearer
 * error="insufficient_user_authentication"`, `acr_values`, `max_age`) into
 * the SPA's `step_up_required`, whose `loginUrl` asks the IdP for what the
 * upstream wants — when a route's `stepUp` declares it. An undeclared ask
 * becomes `forbidden`: the gateway starts no login it was not configured for.
 */
export class UpstreamChallenges {
  private readonly allowList: StepUpAllowList;
  private readonly policy: RoutePolicy;
  private readonly logger: Logger;

  constructor(allowList: StepUpAllowList, policy: RoutePolicy, logger: Logger) {
    this.allowList = allowList;
    this.policy = policy;
    this.logger = logger;
  }

  /** The answer that replaces an upstream's 401, or undefined when the 401 is not a step-up challenge (it then passes through). */
  translate(route: RouteConfig, wwwAuthenticate: string | readonly string[] | undefined, req: IncomingMessage): HttpProblem | undefined {
    if (wwwAuthenticate === undefined) return undefined;
    const asked = insufficientUserAuthentication(wwwAuthenticate);
    if (asked === undefined) return undefined;
    const stepUp = this.allowList.challenge(asked.acrValues, asked.maxAge);
    if (stepUp !== undefined) {
      this.logger.info({ route: route.prefix }, 'upstream asked for a step-up sign-in');
      return this.policy.stepUpRequired(stepUp, req);
    }
    this.logger.warn(
      {
        route: route.prefix,
        ...(asked.acrValues !== undefined && LOGGABLE.test(asked.acrValues) ? { acrValues: asked.acrValues } : {}),
        ...(asked.maxAge !== undefined && LOGGABLE.test(asked.maxAge) ? { maxAge: asked.maxAge } : {}),
      },
      "upstream asked for a step-up that no route's stepUp declares; answered 403: declare that acr and/or maxAge in a route's stepUp to let users step up",
    );
    return problems.forbidden(route.prefix);
  }
}
