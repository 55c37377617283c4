import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { createProxyMiddleware, type RequestHandler } from 'http-proxy-middleware';
import type { RouteConfig } from '../config/types.ts';
import { HttpProblem, sendProblem } from '../http/problem.ts';
import { upstreamTlsOptions } from './tls.ts';

/** Response headers that describe the upstream hop, not the response. */
const HOP_BY_HOP_RESPONSE = ['keep-alive', 'proxy-connection', 'proxy-authenticate', 'trailer', 'upgrade'];

class UpstreamTimeoutError extends Error {
  readonly code = 'UPSTREAM_TIMEOUT';
}

export interface Upstream {
  route: RouteConfig;
  handle: RequestHandler;
  close(): void;
}

/** A route together with its proxy, as the route table holds it. */
export type UpstreamRoute = RouteConfig & { upstream: Upstream };

/**
 * One reverse proxy per route, each with its own keep-alive agent (a new TCP
 * connection per request is an order of magnitude slower). Bodies stream both
 * ways. `timeoutMs` bounds the wait for the upstream's response headers; once
 * it answers, a long stream (SSE, downloads) is not cut.
 */
export function createUpstream(route: RouteConfig, logger: Logger, gatewayCookies: readonly string[] = []): Upstream {
  const secure = route.target.protocol === 'https:';
  const agent = secure
    ? new https.Agent({ keepAlive: true, maxSockets: 256, ...upstreamTlsOptions(route) })
    : new http.Agent({ keepAlive: true, maxSockets: 256 });
  const handle = createProxyMiddleware({
    target: route.target.href,
    changeOrigin: true,
    xfwd: false,
    secure: true,
    agent,
    ejectPlugins: true,
    plugins: [
      (server) => {
        server.on('proxyReq', (proxyReq) => {
          proxyReq.setTimeout(route.timeoutMs, () => proxyReq.destroy(new UpstreamTimeoutError('upstream timed out')));
          proxyReq.once('response', () => proxyReq.setTimeout(0));
        });
        server.on('proxyRes', (proxyRes, _req, res) => {
          for (const name of HOP_BY_HOP_RESPONSE) delete proxyRes.headers[name];
          const setCookie = proxyRes.headers['set-cookie'];
          if (setCookie) {
            // An upstream shares the gateway's origin: it must not be able to replace or delete the session cookie.
            const kept = setCookie.filter((cookie) => !gatewayCookies.includes(cookie.slice(0, cookie.indexOf('=')).trim()));
            if (kept.length !== setCookie.length) logger.warn({ route: route.prefix }, "upstream tried to set the gateway's own cookie; dropped");
            proxyRes.headers['set-cookie'] = kept;
          }
          // An event stream may stay silent for a while after its headers: send them now, or EventSource
          // never reports the stream open. (Other responses keep headers and first bytes in one packet.)
          if (String(proxyRes.headers['content-type']).startsWith('text/event-stream')) {
            process.nextTick(() => {
              if (!res.headersSent && !res.destroyed) res.flushHeaders();
            });
          }
        });
        server.on('error', (err: Error & { code?: string }, _req, res?: http.ServerResponse | Socket) => {
          const timedOut = err instanceof UpstreamTimeoutError;
          logger.warn({ route: route.prefix, reason: err.code ?? err.name }, timedOut ? 'upstream timed out' : 'upstream request failed');
          if (!(res instanceof http.ServerResponse)) return void res?.destroy();
          if (res.headersSent) return void res.destroy();
          sendProblem(
            res,
            timedOut
              ? new HttpProblem(504, 'upstream_timeout', `The upstream service did not answer within ${route.timeoutMs} ms.`)
              : new HttpProblem(502, 'upstream_unavailable', 'The upstream service could not be reached.'),
          );
        });
      },
    ],
  });
  return { route, handle, close: () => agent.destroy() };
}
