import type { IncomingMessage } from 'node:http';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { GatewayConfig } from '../config/types.ts';
import { csrfProblem } from '../http/csrf.ts';
import { HttpProblem, sendProblem } from '../http/problem.ts';
import type { UpstreamCredentials } from './credentials.ts';
import { prepareUpstreamHeaders, type UpstreamIdentity } from './headers.ts';
import { methodProblem, type ApiRoutes } from './routing.ts';
import type { UpstreamRoute } from './upstream.ts';

export interface ProxyDeps {
  config: GatewayConfig;
  routes: ApiRoutes<UpstreamRoute>;
  credentials: UpstreamCredentials;
}

/**
 * The `/api` hot path: resolve the route (path normalised once), check method
 * and CSRF, get the route's credentials (loading the session only when the
 * route needs it), set the upstream headers and hand over to the route's proxy.
 */
export function apiProxy(deps: ProxyDeps): RequestHandler {
  const { config, routes, credentials } = deps;
  return async function proxyApi(req: Request, res: Response, next: NextFunction): Promise<void> {
    const resolved = routes.resolve(req.originalUrl);
    if (resolved === undefined) return next();
    if (resolved instanceof HttpProblem) return sendProblem(res, resolved);
    const { route } = resolved;
    const refused = methodProblem(route, req.method) ?? csrfProblem(req, config.publicOrigin, config.csrfHeader);
    if (refused) return sendProblem(res, refused);
    const granted = await credentials.forRoute(route, req);
    if (granted instanceof HttpProblem) return sendProblem(res, granted);
    prepareUpstreamHeaders(req, upstreamIdentity(config, req, res.getHeader('x-request-id') as string, route, granted));
    req.url = resolved.upstreamUrl;
    await route.upstream.handle(req, res, next);
  };
}

/** Everything the upstream request's headers are made from, for HTTP and WebSocket alike. */
export function upstreamIdentity(
  config: GatewayConfig,
  req: IncomingMessage,
  requestId: string,
  route: UpstreamRoute,
  granted: { accessToken?: string; user?: Record<string, string> },
): UpstreamIdentity {
  return {
    publicHost: config.publicUrl.host,
    publicProto: config.publicUrl.protocol.slice(0, -1),
    forwardedFor: forwardedFor(req, config.trustProxy !== false),
    requestId,
    ...(granted.accessToken ? { accessToken: granted.accessToken } : {}),
    ...(route.headers ? { extra: route.headers } : {}),
    ...(granted.user ? { user: granted.user } : {}),
  };
}

function forwardedFor(req: IncomingMessage, trusted: boolean): string {
  const remote = req.socket.remoteAddress ?? '';
  const incoming = req.headers['x-forwarded-for'];
  return trusted && typeof incoming === 'string' && incoming ? `${incoming}, ${remote}` : remote;
}
