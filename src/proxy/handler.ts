import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayConfig } from '../config/types.ts';
import { csrfProblem } from '../http/csrf.ts';
import type { ErrorResponder } from '../http/error-handler.ts';
import { HttpProblem, sendProblem } from '../http/problem.ts';
import type { UpstreamCredentials } from './credentials.ts';
import { prepareUpstreamHeaders, type UpstreamIdentity } from './headers.ts';
import { methodProblem, type ApiRoutes, type ResolvedRoute } from './routing.ts';
import type { UpstreamRoute } from './upstream.ts';

export interface ProxyDeps {
  config: GatewayConfig;
  routes: ApiRoutes<UpstreamRoute>;
  credentials: UpstreamCredentials;
  /** For what the proxying throws (the session store or the IdP down). */
  onError: ErrorResponder;
}

/** Takes the request and returns true when it is an `/api` request; false leaves it to the rest of the gateway. */
export type ApiHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

/**
 * The `/api` hot path, in plain Node rather than Express (whose routing and
 * request decoration would cost more than everything below): resolve the route
 * (path normalised once), check method and CSRF, get the route's credentials
 * (loading the session only when the route needs it), set the upstream headers
 * and hand over to the route's proxy.
 */
export function apiProxy(deps: ProxyDeps): ApiHandler {
  const { config, routes, credentials, onError } = deps;

  async function proxy(req: IncomingMessage, res: ServerResponse, resolved: ResolvedRoute<UpstreamRoute>): Promise<void> {
    const { route } = resolved;
    const refused = methodProblem(route, req.method) ?? csrfProblem(req, config.publicOrigin, config.csrfHeader);
    if (refused) return sendProblem(res, refused);
    const granted = await credentials.forRoute(route, req);
    if (granted instanceof HttpProblem) return sendProblem(res, granted);
    prepareUpstreamHeaders(req, upstreamIdentity(config, req, res.getHeader('x-request-id') as string, route, granted));
    req.url = resolved.upstreamUrl;
    await route.upstream.handle(req, res, (err?: unknown) => {
      // The route's proxy answered its own errors (502/504) already; this only catches what it could not.
      if (err !== undefined) onError(err, req, res, resolved.path);
    });
  }

  return (req, res) => {
    const resolved = routes.resolve(req.url ?? '/');
    if (resolved === undefined) return false;
    if (resolved instanceof HttpProblem) sendProblem(res, resolved);
    else proxy(req, res, resolved).catch((err: unknown) => onError(err, req, res, resolved.path));
    return true;
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
