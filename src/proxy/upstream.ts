import http, { type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Logger } from 'pino';
import type { RouteConfig } from '../config/types.ts';
import type { DpopKey } from '../dpop/keys.ts';
import { asksForNonce, dpopProof, DpopNonces } from '../dpop/proof.ts';
import { problems } from '../http/problem-catalogue.ts';
import { sendProblem } from '../http/problem.ts';
import { withoutGatewayCookies } from './gateway-cookies.ts';
import type { RequestBody } from './request-body.ts';
import type { UpstreamChallenges } from './step-up-challenge.ts';
import { upstreamTlsOptions } from './tls.ts';

/** Response headers that describe the upstream hop, not the response (Node frames the answer to the browser itself). */
const HOP_BY_HOP_RESPONSE = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'trailer', 'upgrade', 'transfer-encoding']);
const PLAIN_CONNECTION = /^\s*(keep-alive|close)\s*$/i;

class UpstreamError extends Error {
  readonly code: 'UPSTREAM_TIMEOUT' | 'UPSTREAM_BUSY';
  constructor(code: 'UPSTREAM_TIMEOUT' | 'UPSTREAM_BUSY', message: string) {
    super(message);
    this.code = code;
  }
}

export interface Upstream {
  route: RouteConfig;
  /**
   * Sends the request upstream and the answer back. `req.headers` and
   * `req.url` are already the upstream's; framing and `Host` are set here.
   */
  handle(req: IncomingMessage, res: ServerResponse, body: RequestBody, proof?: UpstreamProof): void;
  close(): void;
}

/** A DPoP-bound token's key: the request then carries a fresh proof (RFC 9449 §7) signed with it. */
export interface UpstreamProof {
  key: DpopKey;
  accessToken: string;
}

/** A route together with its proxy, as the route table holds it. */
export type UpstreamRoute = RouteConfig & { upstream: Upstream };

/**
 * One reverse proxy per route, written on `node:http` so that the gateway
 * frames every upstream request itself: exactly one request per browser
 * request, whatever the browser's `Connection`, `Expect` or framing headers
 * said. Each route has its own keep-alive agent (a new TCP connection per
 * request is an order of magnitude slower) of at most `maxConnections`
 * sockets; a request that gets none within `timeoutMs` is answered 503
 * `upstream_busy` instead of waiting forever. Once connected, `timeoutMs`
 * bounds each silence until the upstream's response headers; a long stream
 * (SSE, downloads, uploads) that keeps moving is not cut.
 */
export function createUpstream(route: RouteConfig, logger: Logger, gatewayCookies: readonly string[] = [], challenges?: UpstreamChallenges, nonces: DpopNonces = new DpopNonces()): Upstream {
  const secure = route.target.protocol === 'https:';
  const agent = secure ? new https.Agent({ keepAlive: true, maxSockets: route.maxConnections, ...upstreamTlsOptions(route) }) : new http.Agent({ keepAlive: true, maxSockets: route.maxConnections });
  const request = secure ? https.request : http.request;
  const hostname = route.target.hostname.replace(/^\[|\]$/g, '');
  const port = route.target.port || (secure ? 443 : 80);
  const host = route.target.host;
  // `htu` is this origin plus the upstream path: the URL the gateway calls, without query (RFC 9449 §4.2).
  const origin = route.target.origin;

  function fail(err: Error & { code?: string }, res: ServerResponse): void {
    const code = err instanceof UpstreamError ? err.code : undefined;
    // The browser went away first and the upstream request was cut for it: nothing failed upstream.
    if (res.destroyed && code === undefined) return void logger.debug({ route: route.prefix }, 'client went away; upstream request cut');
    logger.warn(
      { route: route.prefix, reason: err.code ?? err.name },
      code === 'UPSTREAM_BUSY' ? 'no upstream connection free' : code === 'UPSTREAM_TIMEOUT' ? 'upstream timed out' : 'upstream request failed',
    );
    if (res.headersSent || res.destroyed) return void res.destroy();
    sendProblem(res, code === 'UPSTREAM_BUSY' ? problems.upstreamBusy(route.timeoutMs) : code === 'UPSTREAM_TIMEOUT' ? problems.upstreamTimeout(route.timeoutMs) : problems.upstreamUnavailable());
  }

  function handle(req: IncomingMessage, res: ServerResponse, body: RequestBody, proof?: UpstreamProof): void {
    const headers: OutgoingHttpHeaders = req.headers;
    headers.host = host;
    if (proof) headers.dpop = sign(req, proof);
    if (body.kind === 'buffered') headers['content-length'] = body.data.length;
    else if (body.kind === 'stream') {
      if (body.length === undefined) headers['transfer-encoding'] = 'chunked';
      else headers['content-length'] = body.length;
    } else if (body.emptyLength) headers['content-length'] = 0;

    const proxyReq = request({ agent, hostname, port, method: req.method, path: req.url, headers, setHost: false });
    // Waiting for a pooled connection: bounded, or a slow route would hold every later request forever.
    // Answered here: a request destroyed while queued reports its error only once a socket frees up.
    let gaveUp = false;
    const busy = setTimeout(() => {
      gaveUp = true;
      fail(new UpstreamError('UPSTREAM_BUSY', 'no upstream connection free'), res);
      proxyReq.destroy();
    }, route.timeoutMs);
    proxyReq.once('socket', () => {
      clearTimeout(busy);
      proxyReq.setTimeout(route.timeoutMs, () => proxyReq.destroy(new UpstreamError('UPSTREAM_TIMEOUT', 'upstream timed out')));
    });
    proxyReq.on('error', (err) => {
      clearTimeout(busy);
      if (!gaveUp) fail(err, res);
    });
    proxyReq.once('response', (proxyRes) => {
      proxyReq.setTimeout(0);
      if (proof && nonceRetry(proxyRes, body)) {
        // RFC 9449 §9: the same request once more, with a proof carrying the nonce just given; its body was read whole.
        proxyRes.resume();
        headers.dpop = sign(req, proof);
        return handle(req, res, body);
      }
      respond(proxyRes, res, req);
    });
    // The browser went away: so does the upstream request (and its socket, which is not reusable mid-message).
    res.once('close', () => {
      if (!res.writableFinished) proxyReq.destroy();
    });

    if (body.kind === 'buffered') proxyReq.end(body.data);
    else if (body.kind === 'stream') {
      for (const chunk of body.head) proxyReq.write(chunk);
      // A browser that stops mid-body: the upstream must not take the truncated stream for the whole body.
      req.once('close', () => {
        if (!req.complete) proxyReq.destroy();
      });
      req.pipe(proxyReq);
    } else proxyReq.end();
  }

  function sign(req: IncomingMessage, proof: UpstreamProof): string {
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    return dpopProof(proof.key, req.method ?? 'GET', origin + (query === -1 ? url : url.slice(0, query)), proof.accessToken, nonces.get(origin));
  }

  /**
   * Remembers the upstream's latest `DPoP-Nonce` (most requests then need no
   * retry), and says whether this answer asks for one more try with it. A
   * streamed body cannot be sent again: that 401 goes to the browser, and the
   * next request carries the nonce.
   */
  function nonceRetry(proxyRes: IncomingMessage, body: RequestBody): boolean {
    const nonce = proxyRes.headers['dpop-nonce'];
    if (typeof nonce !== 'string' || nonce === '') return false;
    nonces.set(origin, nonce);
    return proxyRes.statusCode === 401 && body.kind !== 'stream' && asksForNonce(proxyRes.headers['www-authenticate']);
  }

  function respond(proxyRes: IncomingMessage, res: ServerResponse, req: IncomingMessage): void {
    if (res.destroyed) return void proxyRes.destroy();
    // Only a 401 can be an RFC 9470 challenge: every other answer passes without its headers being read.
    if (proxyRes.statusCode === 401 && challenges !== undefined) {
      const replaced = challenges.translate(route, proxyRes.headers['www-authenticate'], req);
      if (replaced !== undefined) {
        // The upstream's own body is not the SPA's business here; read it off so that the connection can be reused.
        proxyRes.resume();
        return sendProblem(res, replaced);
      }
    }
    res.writeHead(proxyRes.statusCode ?? 502, proxyRes.statusMessage, responseHeaders(proxyRes.headers));
    // An event stream may stay silent for a while after its headers: send them now, or EventSource
    // never reports the stream open. (Other responses keep headers and first bytes in one packet.)
    if (String(proxyRes.headers['content-type']).startsWith('text/event-stream')) res.flushHeaders();
    proxyRes.on('error', () => res.destroy());
    proxyRes.on('close', () => {
      if (!proxyRes.complete) res.destroy();
    });
    proxyRes.pipe(res);
  }

  function responseHeaders(incoming: IncomingHttpHeaders): IncomingHttpHeaders {
    const named =
      incoming.connection !== undefined && !PLAIN_CONNECTION.test(incoming.connection)
        ? incoming.connection
            .toLowerCase()
            .split(',')
            .map((name) => name.trim())
        : undefined;
    const out: IncomingHttpHeaders = {};
    for (const name in incoming) {
      if (HOP_BY_HOP_RESPONSE.has(name) || named?.includes(name)) continue;
      out[name] = incoming[name];
    }
    const setCookie = out['set-cookie'];
    if (setCookie) {
      const kept = withoutGatewayCookies(setCookie, gatewayCookies);
      if (kept.length !== setCookie.length) logger.warn({ route: route.prefix }, "upstream tried to set the gateway's own cookie; dropped");
      if (kept.length) out['set-cookie'] = kept;
      else delete out['set-cookie'];
    }
    return out;
  }

  return { route, handle, close: () => agent.destroy() };
}
