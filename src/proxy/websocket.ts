import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/types.ts';
import { dpopProof, type DpopNonces } from '../dpop/proof.ts';
import { crossSiteProblem } from '../http/csrf.ts';
import { problemFor, problems } from '../http/problem-catalogue.ts';
import { HttpProblem, writeRawProblem as refuse } from '../http/problem.ts';
import { requestIdOf } from '../http/request-id.ts';
import type { UpstreamCredentials } from './credentials.ts';
import { upstreamIdentity } from './handler.ts';
import { prepareUpstreamHeaders } from './headers.ts';
import type { ApiRoutes } from './routing.ts';
import type { UpstreamRoute } from './upstream.ts';
import { forwardUpgrade } from './websocket-forward.ts';
import type { SessionWebSockets } from './websocket-registry.ts';

export interface WebSocketDeps {
  config: GatewayConfig;
  routes: ApiRoutes<UpstreamRoute>;
  credentials: UpstreamCredentials;
  logger: Logger;
  /** Upgrades that are not for `/api` (the SPA dev server's HMR socket), when there is such a target. */
  fallback?: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** Sees every proxied WebSocket, so that shutdown can close them with 1001. */
  onOpen?: (socket: Duplex) => void;
  /** Closes a session's WebSockets (1008) when the session ends. */
  sessionSockets?: SessionWebSockets;
  /** The upstreams' latest DPoP nonces, shared with the HTTP path. */
  dpopNonces?: DpopNonces;
}

/**
 * The server's `upgrade` handler. express-session and the Express stack do
 * not run on upgrades, so the same checks run here: the route must allow
 * WebSockets, `Origin` must be the gateway's own (a browser cannot add the
 * CSRF header to a WebSocket), and the session is loaded and its token
 * refreshed before any upstream connection is made.
 */
export function webSocketUpgrade(deps: WebSocketDeps): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  const { config, routes, credentials, logger } = deps;
  return (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    void (async () => {
      const requestId = requestIdOf(req);
      // Only WebSockets: any other protocol switch (h2c) would be a tunnel past the gateway's per-request checks.
      if (req.method !== 'GET' || req.headers.upgrade?.toLowerCase() !== 'websocket') {
        return refuse(socket, problems.webSocketRequired());
      }
      const origin = req.headers.origin;
      if (origin === undefined) return refuse(socket, problems.originRequired());
      const crossSite = crossSiteProblem(req, config.publicOrigin);
      if (crossSite) return refuse(socket, crossSite);
      const resolved = routes.resolve(req.url ?? '/');
      if (resolved === undefined) {
        if (deps.fallback) return deps.fallback(req, socket, head);
        return refuse(socket, problems.webSocketNotFound());
      }
      if (resolved instanceof HttpProblem) return refuse(socket, resolved);
      const { route } = resolved;
      if (!route.websocket) return refuse(socket, problems.webSocketNotEnabled(route.prefix));
      const granted = await credentials.forRoute(route, req);
      if (granted instanceof HttpProblem) return refuse(socket, granted);
      if (socket.destroyed) return;
      prepareUpstreamHeaders(req, upstreamIdentity(config, req, requestId, route, granted), true);
      req.url = resolved.upstreamUrl;
      if (granted.dpop && granted.accessToken) {
        // A handshake is an HTTP GET: it carries a proof like any request (no nonce retry: the browser's handshake is answered as it comes).
        const target = new URL(resolved.upstreamUrl, route.target);
        req.headers.dpop = dpopProof(granted.dpop, 'GET', target.origin + target.pathname, granted.accessToken, deps.dpopNonces?.get(target.origin));
      }
      deps.onOpen?.(socket);
      const { handle } = granted;
      forwardUpgrade({
        req,
        client: socket,
        head,
        route,
        gatewayCookies: [config.cookieName, config.txCookieName],
        logger,
        ...(handle !== undefined && deps.sessionSockets ? { onOpen: (proxied) => deps.sessionSockets?.track(handle, proxied) } : {}),
      });
    })().catch((err: unknown) => {
      logger.warn({ reason: err instanceof Error ? ('code' in err && String(err.code)) || err.name : 'error' }, 'websocket upgrade failed');
      refuse(socket, problems.webSocketNotOpened(problemFor(err)));
    });
  };
}
