import http from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { RequestHandler } from 'express';
import { createProxyMiddleware } from 'http-proxy-middleware';
import { problems } from './problem-catalogue.ts';
import { sendProblem } from './problem.ts';
import { isGatewayPath } from './gateway-paths.ts';

export interface SpaDevProxy {
  /** Everything but `/api` and `/auth` goes to the dev server. */
  handle: RequestHandler;
  /** The dev server's own WebSocket (Vite's HMR), already checked for Origin by the caller. */
  upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void;
  close(): void;
}

/**
 * Development mode (`BFF_SPA_DEV_URL`): the SPA comes from a dev server such as
 * Vite, through the gateway, so that the app and its API share one origin and
 * the session cookie works exactly as in production.
 */
export function spaDevProxy(target: URL): SpaDevProxy {
  const agent = new http.Agent({ keepAlive: true });
  const proxy = createProxyMiddleware({
    target: target.href,
    changeOrigin: true,
    agent,
    ejectPlugins: true,
    plugins: [
      (server) => {
        server.on('proxyReq', (proxyReq) => {
          // The dev server has no use for the session cookie.
          proxyReq.removeHeader('cookie');
        });
        server.on('proxyReqWs', (proxyReq) => proxyReq.removeHeader('cookie'));
        server.on('error', (_err, _req, res?: http.ServerResponse | Socket) => {
          if (res instanceof http.ServerResponse && !res.headersSent) {
            return sendProblem(res as Parameters<typeof sendProblem>[0], problems.spaDevServerUnavailable(target.origin));
          }
          res?.destroy();
        });
      },
    ],
  });
  return {
    handle: (req, res, next) => {
      if (isGatewayPath(req.path)) return next();
      // The gateway answered `Expect` already; forwarded, it would make the proxy library skip its per-request hooks.
      delete req.headers.expect;
      void proxy(req, res, next);
    },
    upgrade: (req, socket, head) => proxy.upgrade(req, socket as Socket, head),
    close: () => agent.destroy(),
  };
}
