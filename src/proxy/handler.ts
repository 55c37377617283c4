import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { GatewayConfig, RouteConfig } from '../config/types.ts';
import { csrfProblem } from '../http/csrf.ts';
import { HttpProblem, problems, sendProblem } from '../http/problem.ts';
import type { SessionReader } from '../session/reader.ts';
import type { ClientTokenCache } from '../tokens/client-credentials.ts';
import type { TokenRefresher } from '../tokens/refresher.ts';
import { prepareUpstreamHeaders } from './headers.ts';
import { normalisePath } from './path.ts';
import { RouteTable } from './route-table.ts';
import type { Upstream } from './upstream.ts';

export interface ProxyDeps {
  config: GatewayConfig;
  upstreams: readonly Upstream[];
  sessions: SessionReader;
  refresher: TokenRefresher;
  clientTokens: ClientTokenCache;
}

const API_PREFIX = '/api';

/**
 * The `/api` hot path: normalise the path once, match a route, check method
 * and CSRF, load the session only when the route needs it, inject the bearer
 * token and hand the request to the route's proxy.
 */
export function apiProxy(deps: ProxyDeps): RequestHandler {
  const { config, sessions, refresher, clientTokens } = deps;
  const table = new RouteTable(deps.upstreams.map((u) => ({ ...u.route, upstream: u })));
  const publicHost = config.publicUrl.host;
  const publicProto = config.publicUrl.protocol.slice(0, -1);

  /**
   * The bearer token a route sends upstream, undefined for none, or the
   * problem to answer with. A refresh that ends the session (401) downgrades
   * the optional modes to anonymous or client; an IdP outage (503) does not.
   */
  async function upstreamToken(route: RouteConfig, req: Request): Promise<string | undefined | HttpProblem> {
    if (route.token === 'none') return undefined;
    if (route.token === 'client') return clientToken(route);
    const session = await sessions.load(req);
    const user = session?.data.user;
    if (session && user) {
      const fresh = await refresher.fresh(session.sid, user);
      if (fresh.ok) return fresh.user.accessToken;
      if (route.token === 'user' || fresh.problem.status !== 401) return fresh.problem;
    } else if (route.token === 'user') {
      return problems.notAuthenticated();
    }
    return route.token === 'user-or-client' ? clientToken(route) : undefined;
  }

  async function clientToken(route: RouteConfig): Promise<string | HttpProblem> {
    try {
      return await clientTokens.get(route.scope, route.resource);
    } catch (err) {
      if (err instanceof HttpProblem) return err;
      throw err;
    }
  }

  return async function proxyApi(req: Request, res: Response, next: NextFunction): Promise<void> {
    const raw = req.originalUrl;
    const queryAt = raw.indexOf('?');
    const rawPath = queryAt < 0 ? raw : raw.slice(0, queryAt);
    if (rawPath !== API_PREFIX && !rawPath.startsWith(`${API_PREFIX}/`) && !/^\/api%/i.test(rawPath)) return next();

    const normalised = normalisePath(rawPath);
    if (!normalised.ok) return sendProblem(res, new HttpProblem(400, 'bad_path', `The request path is not acceptable: ${normalised.reason}.`));
    const { path } = normalised;
    if (path !== API_PREFIX && !path.startsWith(`${API_PREFIX}/`)) {
      return sendProblem(res, new HttpProblem(400, 'bad_path', 'The request path leaves /api once normalised.'));
    }
    const match = table.match(path);
    if (!match) return sendProblem(res, new HttpProblem(404, 'route_not_found', `No API route is configured for ${path}.`));
    const { route } = match;
    // `/api/orders/../admin` names the orders route but would land on another one: refuse rather than re-route.
    if (normalised.lexical !== path && table.match(normalised.lexical)?.route !== route) {
      return sendProblem(res, new HttpProblem(400, 'bad_path', 'The request path climbs out of its route prefix.'));
    }
    if (route.methods && !route.methods.includes(req.method)) {
      return sendProblem(res, new HttpProblem(405, 'method_not_allowed', `${req.method} is not allowed on ${route.prefix}.`, { Allow: route.methods.join(', ') }));
    }
    const refused = csrfProblem(req, config.publicOrigin, config.csrfHeader);
    if (refused) return sendProblem(res, refused);

    const token = await upstreamToken(route, req);
    if (token instanceof HttpProblem) return sendProblem(res, token);

    prepareUpstreamHeaders(req, {
      publicHost,
      publicProto,
      forwardedFor: forwardedFor(req, config.trustProxy !== false),
      requestId: res.getHeader('x-request-id') as string,
      ...(token ? { accessToken: token } : {}),
    });
    req.url = match.upstreamPath + (queryAt < 0 ? '' : raw.slice(queryAt));
    await route.upstream.handle(req, res, next);
  };
}

function forwardedFor(req: Request, trusted: boolean): string {
  const remote = req.socket.remoteAddress ?? '';
  const incoming = req.headers['x-forwarded-for'];
  return trusted && typeof incoming === 'string' && incoming ? `${incoming}, ${remote}` : remote;
}
