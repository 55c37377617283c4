import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { GatewayConfig } from '../config/types.ts';
import { csrfProblem } from '../http/csrf.ts';
import { HttpProblem, problems, sendProblem } from '../http/problem.ts';
import type { SessionReader } from '../session/reader.ts';
import { prepareUpstreamHeaders } from './headers.ts';
import { normalisePath } from './path.ts';
import { RouteTable } from './route-table.ts';
import type { Upstream } from './upstream.ts';

export interface ProxyDeps {
  config: GatewayConfig;
  upstreams: readonly Upstream[];
  sessions: SessionReader;
}

const API_PREFIX = '/api';

/**
 * The `/api` hot path: normalise the path once, match a route, check method
 * and CSRF, load the session only when the route needs it, inject the bearer
 * token and hand the request to the route's proxy.
 */
export function apiProxy(deps: ProxyDeps): RequestHandler {
  const { config, sessions } = deps;
  const table = new RouteTable(deps.upstreams.map((u) => ({ ...u.route, upstream: u })));
  const publicHost = config.publicUrl.host;
  const publicProto = config.publicUrl.protocol.slice(0, -1);

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

    let accessToken: string | undefined;
    if (route.token !== 'none') {
      const session = await sessions.load(req);
      const user = session?.data.user;
      const fresh = user && (user.accessTokenExpiresAt === undefined || user.accessTokenExpiresAt > Date.now());
      if (fresh) accessToken = user.accessToken;
      else if (route.token === 'user') return sendProblem(res, user ? problems.tokenExpired() : problems.notAuthenticated());
    }

    prepareUpstreamHeaders(req, {
      publicHost,
      publicProto,
      forwardedFor: forwardedFor(req, config.trustProxy !== false),
      requestId: res.getHeader('x-request-id') as string,
      ...(accessToken ? { accessToken } : {}),
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
