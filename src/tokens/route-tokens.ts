import { TOKEN_MODE_TRAITS, userTokenResource, type RouteConfig } from '../config/types.ts';
import type { IdpError } from '../oidc/errors.ts';
import type { ExchangeTarget, TokenSet } from '../oidc/token-set.ts';
import type { RouteToken } from '../session/types.ts';
import { renewalTime } from './freshness.ts';

/**
 * How a route's own token is obtained, and the key it is cached under in the
 * session (`UserSession.routeTokens`). Two routes that ask for the same thing
 * share one cached token.
 */
export type RouteTokenSpec = { grant: 'resource'; key: string; resource: string } | ({ grant: 'exchange'; key: string } & ExchangeTarget);

const specs = new WeakMap<RouteConfig, RouteTokenSpec | null>();

/**
 * The route's token spec, or undefined when the route sends the session's own
 * token as it is. Computed once per route: the proxy path asks on every request.
 */
export function routeTokenSpec(route: RouteConfig): RouteTokenSpec | undefined {
  let spec = specs.get(route);
  if (spec === undefined) {
    spec = buildSpec(route) ?? null;
    specs.set(route, spec);
  }
  return spec ?? undefined;
}

function buildSpec(route: RouteConfig): RouteTokenSpec | undefined {
  const traits = TOKEN_MODE_TRAITS[route.token];
  if (traits.exchangesUserToken) {
    const { audience, resource, scope } = route;
    return {
      grant: 'exchange',
      key: `exchange:${audience ?? ''}|${resource ?? ''}|${scope ?? ''}`,
      ...(audience !== undefined ? { audience } : {}),
      ...(resource !== undefined ? { resource } : {}),
      ...(scope !== undefined ? { scope } : {}),
    };
  }
  const resource = userTokenResource(route);
  return resource === undefined ? undefined : { grant: 'resource', key: `resource:${resource}`, resource };
}

/** The same renewal rule as the session's own token (tokens/freshness.ts); a token whose life the IdP did not state lives as long as the session. */
export function routeTokenDue(token: RouteToken, now: number, skewMs: number): boolean {
  return token.expiresAt !== undefined && now >= renewalTime(token.expiresAt, token.issuedAt, skewMs);
}

export function toRouteToken(tokens: TokenSet, now: number): RouteToken {
  return {
    accessToken: tokens.accessToken,
    tokenType: tokens.tokenType,
    issuedAt: tokens.accessTokenIssuedAt ?? now,
    ...(tokens.accessTokenExpiresAt !== undefined ? { expiresAt: tokens.accessTokenExpiresAt } : {}),
  };
}

/**
 * A refresh-token grant carrying `resource` refused for the resource rather
 * than for the refresh token (RFC 8707 §2: `invalid_target`; a scope the
 * resource does not know: `invalid_scope`): the session is kept, only the
 * route is refused. Every other refusal means what it means for a plain refresh.
 */
export function refusedForTheResource(failure: IdpError): boolean {
  return failure.kind === 'refused' && (failure.error === 'invalid_target' || failure.error === 'invalid_scope');
}

/** RFC 8693 §2.2.2 answers a subject token the IdP no longer accepts with `invalid_grant`; some IdPs say `invalid_token`. */
export function subjectTokenRefused(failure: IdpError): boolean {
  return failure.kind === 'refused' && (failure.error === 'invalid_grant' || failure.error === 'invalid_token');
}
