import type { IncomingMessage } from 'node:http';
import type { DpopKey, DpopKeys } from '../dpop/keys.ts';
import { TOKEN_MODE_TRAITS, type RouteConfig } from '../config/types.ts';
import { problems } from '../http/problem-catalogue.ts';
import { HttpProblem } from '../http/problem.ts';
import type { LoadedSession, SessionReader } from '../session/reader.ts';
import type { UserSession } from '../session/types.ts';
import type { ClientTokenCache } from '../tokens/client-credentials.ts';
import type { Freshness, RouteTokenOutcome, TokenRefresher } from '../tokens/refresher.ts';
import { routeTokenSpec, type RouteTokenSpec } from '../tokens/route-tokens.ts';
import { userHeaders } from './headers.ts';
import type { RoutePolicy } from './route-policy.ts';

export interface Credentials {
  accessToken?: string;
  /** `X-User-*` headers, for routes that ask for them and have a user. */
  user?: Record<string, string>;
  /** The session whose user token this is, so that what it authorised (a WebSocket) can end with it. */
  handle?: string;
  /** The key the access token is bound to (RFC 9449): the session's, or the gateway's for its client token. Absent for Bearer tokens. */
  dpop?: DpopKey;
}

/**
 * What a route sends upstream on behalf of this request: the user's fresh
 * token, the gateway's client token, or nothing — or the problem to answer
 * with. This is the one place where the refresher's outcomes become HTTP
 * answers. A session that ended (401) downgrades the optional modes to
 * anonymous or client; an IdP outage (503) does not.
 */
export class UpstreamCredentials {
  private readonly sessions: SessionReader;
  private readonly refresher: TokenRefresher;
  private readonly clientTokens: ClientTokenCache;
  private readonly policy: RoutePolicy;
  /** `BFF_DPOP=true`: the imported keys, so that a request looks its session's key up rather than parsing it. */
  private readonly dpop: DpopKeys | undefined;

  constructor(sessions: SessionReader, refresher: TokenRefresher, clientTokens: ClientTokenCache, policy: RoutePolicy, dpop?: DpopKeys) {
    this.sessions = sessions;
    this.refresher = refresher;
    this.clientTokens = clientTokens;
    this.policy = policy;
    this.dpop = dpop;
  }

  async forRoute(route: RouteConfig, req: IncomingMessage): Promise<Credentials | HttpProblem> {
    const { sendsUserToken, exchangesUserToken, withoutUser } = TOKEN_MODE_TRAITS[route.token];
    if (sendsUserToken) {
      // A property check on the hot path: only routes with a token of their own look one up.
      const spec = route.resource !== undefined || exchangesUserToken ? routeTokenSpec(route) : undefined;
      const found = await this.userCredentials(route, req, spec);
      if (found !== undefined) {
        // A session the provider ended (401) falls back to what the mode sends without a user; any other problem (an IdP outage) is answered.
        if (!(found instanceof HttpProblem) || withoutUser === 'refuse' || found.status !== 401) return found;
      }
    }
    switch (withoutUser) {
      case 'refuse':
        return problems.notAuthenticated();
      case 'no-token':
        return {};
      case 'client-token':
        return this.client(route);
    }
  }

  /** The signed-in user's fresh token (and headers), the problem that stopped it, or undefined when there is no user. */
  private async userCredentials(route: RouteConfig, req: IncomingMessage, spec: RouteTokenSpec | undefined): Promise<Credentials | HttpProblem | undefined> {
    const session = await this.sessions.load(req);
    const user = session?.data.user;
    if (session && user) {
      // Before the refresh: a session the route refuses costs the IdP nothing and never reaches the upstream.
      const refused = this.policy.refusal(route, user, req);
      if (refused) return refused;
      if (spec) return this.routeCredentials(route, spec, session, user);
      const fresh = await this.refresher.fresh(session.handle, user);
      return fresh.kind === 'fresh' ? this.granted(route, session, fresh.user, fresh.user.accessToken) : freshnessProblem(fresh);
    }
    return undefined;
  }

  /** The route's own token (`resource` or `exchange`), cached in the session, or the problem that stopped it. */
  private async routeCredentials(route: RouteConfig, spec: RouteTokenSpec, session: LoadedSession, user: UserSession): Promise<Credentials | HttpProblem> {
    const outcome = await this.refresher.routeToken(session.handle, user, spec);
    return outcome.kind === 'fresh' ? this.granted(route, session, outcome.user, outcome.token.accessToken) : routeTokenProblem(outcome, route.prefix, spec);
  }

  /** What a request that may go ahead sends upstream for its user: the token, its session (and DPoP key), the route's `X-User-*` headers. */
  private granted(route: RouteConfig, session: LoadedSession, user: UserSession, accessToken: string): Credentials {
    // Activity slides the idle timeout only once the request can go ahead: a refresh that failed is no activity.
    this.sessions.touch(session);
    return {
      accessToken,
      handle: session.handle,
      ...this.sessionKey(user),
      ...(route.userHeaders ? { user: userHeaders(user.sub, user.claims, route.userHeaders) } : {}),
    };
  }

  private async client(route: RouteConfig): Promise<Credentials | HttpProblem> {
    try {
      const accessToken = await this.clientTokens.get(route.scope, route.resource);
      return this.dpop ? { accessToken, dpop: this.dpop.gatewayKey } : { accessToken };
    } catch (err) {
      if (err instanceof HttpProblem) return err;
      throw err;
    }
  }

  /** The session's DPoP key (imported once, then cached), when its tokens are bound to one. */
  private sessionKey(user: UserSession): { dpop?: DpopKey } {
    return user.dpopKey !== undefined && this.dpop !== undefined ? { dpop: this.dpop.load(user.dpopKey) } : NO_KEY;
  }
}

const NO_KEY: { dpop?: DpopKey } = Object.freeze({});

function routeTokenProblem(outcome: Exclude<RouteTokenOutcome, { kind: 'fresh' }>, prefix: string, spec: RouteTokenSpec): HttpProblem {
  if (outcome.kind !== 'refused') return freshnessProblem(outcome);
  return spec.grant === 'exchange' ? problems.tokenExchangeRefused(prefix) : problems.routeTokenRefused(prefix);
}

/** The answer for a request whose session could not get a fresh access token. */
function freshnessProblem(outcome: Exclude<Freshness, { kind: 'fresh' }>): HttpProblem {
  switch (outcome.kind) {
    case 'ended':
      return problems.sessionExpired();
    case 'gone':
      return problems.notAuthenticated();
    case 'expired':
      return problems.tokenExpired();
    case 'unavailable':
      return problems.idpRenewalUnavailable(outcome.retryAfterSec);
  }
}
