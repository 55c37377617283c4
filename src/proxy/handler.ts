import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayConfig } from '../config/types.ts';
import { csrfProblem } from '../http/csrf.ts';
import type { ErrorResponder } from '../http/error-handler.ts';
import { clientAddress, trustProxyOf, upstreamForwardedFor } from '../http/client-address.ts';
import { problems } from '../http/problem-catalogue.ts';
import { HttpProblem, sendProblem } from '../http/problem.ts';
import type { UpstreamCredentials } from './credentials.ts';
import { prepareUpstreamHeaders, type UpstreamIdentity } from './headers.ts';
import { bodyless, receiveBody, requestFraming, UploadSlots } from './request-body.ts';
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
 * (loading the session only when the route needs it), receive a small body
 * whole, set the upstream headers and hand over to the route's proxy.
 */
export function apiProxy(deps: ProxyDeps): ApiHandler {
  const { config, routes, credentials, onError } = deps;
  const trust = trustProxyOf(config);
  const bufferBytes = config.proxyLimits.bufferBytes;
  const uploads = new UploadSlots(config.proxyLimits.maxStreamsPerClient);

  /** Takes one of the client's streamed-upload slots until the response closes, or answers 429. */
  function streamSlot(req: IncomingMessage, res: ServerResponse): boolean {
    const release = uploads.take(clientAddress(req, trust));
    if (release === undefined) {
      sendProblem(res, problems.tooManyUploads(config.proxyLimits.maxStreamsPerClient));
      return false;
    }
    res.once('close', release);
    return true;
  }

  async function proxy(req: IncomingMessage, res: ServerResponse, resolved: ResolvedRoute<UpstreamRoute>): Promise<void> {
    const { route } = resolved;
    const refused = methodProblem(route, req.method) ?? csrfProblem(req, config.publicOrigin, config.csrfHeader);
    if (refused) return sendProblem(res, refused);
    const framing = requestFraming(req);
    if (framing instanceof HttpProblem) return sendProblem(res, framing);
    // Node leaves `100 Continue` to us (the server's checkContinue listener): sent once the request has passed every check.
    const expectsContinue = req.headers.expect !== undefined;
    const granted = await credentials.forRoute(route, req);
    if (granted instanceof HttpProblem) return sendProblem(res, granted);
    const declaredLarge = framing.length !== undefined && framing.length > bufferBytes;
    if (declaredLarge && !streamSlot(req, res)) return;
    const body = bodyless(framing) ?? (await receiveBody(req, res, framing, bufferBytes, expectsContinue));
    if (body === undefined) return;
    // A chunked body that outgrew the buffer streams, and counts, from here.
    if (body.kind === 'stream' && !declaredLarge && !streamSlot(req, res)) return;
    prepareUpstreamHeaders(req, upstreamIdentity(config, req, res.getHeader('x-request-id') as string, route, granted));
    req.url = resolved.upstreamUrl;
    route.upstream.handle(req, res, body, granted.dpop && granted.accessToken ? { key: granted.dpop, accessToken: granted.accessToken } : undefined);
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
  granted: { accessToken?: string; user?: Record<string, string>; dpop?: unknown },
): UpstreamIdentity {
  return {
    publicHost: config.publicUrl.host,
    publicProto: config.publicUrl.protocol.slice(0, -1),
    forwardedFor: upstreamForwardedFor(req, trustProxyOf(config)),
    requestId,
    ...(granted.accessToken ? { accessToken: granted.accessToken } : {}),
    ...(granted.dpop !== undefined ? { dpop: true } : {}),
    ...(route.headers ? { extra: route.headers } : {}),
    ...(granted.user ? { user: granted.user } : {}),
    ...(route.passHeaders ? { pass: route.passHeaders } : {}),
  };
}
