import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { RouteConfig } from '../config/types.ts';
import type { DpopKey } from '../dpop/keys.ts';
import { asksForNonce, dpopProof, DpopNonces } from '../dpop/proof.ts';
import { problems } from '../http/problem-catalogue.ts';
import { sendProblem } from '../http/problem.ts';
import type { RequestBody } from './request-body.ts';
import type { UpstreamChallenges } from './step-up-challenge.ts';
import { UpstreamExchange, type ExchangeContext } from './upstream-exchange.ts';
import { classifyUpstreamError, createUpstreamPool, type UpstreamFailure } from './upstream-pool.ts';
import { streamedBody } from './upstream-body.ts';

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
 * One reverse proxy per route on an undici connection pool, which frames
 * every upstream request itself: exactly one request per browser request,
 * whatever the browser's `Connection`, `Expect` or framing headers said. At
 * most `maxConnections` kept-alive connections; a request that gets none
 * within `timeoutMs` is answered 503 `upstream_busy` instead of waiting
 * forever. Connecting and then waiting for the response headers are each
 * bounded by `timeoutMs`; a long stream (SSE, downloads, uploads) that keeps
 * moving is not cut.
 */
export function createUpstream(route: RouteConfig, logger: Logger, gatewayCookies: readonly string[] = [], challenges?: UpstreamChallenges, nonces: DpopNonces = new DpopNonces()): Upstream {
  const pool = createUpstreamPool(route);
  const host = route.target.host;
  // `htu` is this origin plus the upstream path: the URL the gateway calls, without query (RFC 9449 §4.2).
  const origin = route.target.origin;

  const context: ExchangeContext = {
    route,
    gatewayCookies,
    fail,
    challenge: challenges === undefined ? undefined : (wwwAuthenticate, req) => challenges.translate(route, wwwAuthenticate, req),
    retryWithNonce,
    // RFC 9449 §9: the same request once more, with a proof carrying the nonce just given (its body was read whole), and no further retry.
    resend: (req, res, body, proof) => {
      req.headers.dpop = sign(req, proof);
      dispatch(req, res, body, undefined);
    },
    droppedGatewayCookie: () => logger.warn({ route: route.prefix }, "upstream tried to set the gateway's own cookie; dropped"),
    // All connections up and busy: the wait was for one of them. Otherwise it was for a connection being made.
    waitedForConnection: () => pool.stats.connected >= route.maxConnections,
  };

  function fail(failure: UpstreamFailure | Error, res: ServerResponse): void {
    const kind = failure instanceof Error ? classifyUpstreamError(failure) : failure;
    // The browser went away first and the upstream request was cut for it: nothing failed upstream.
    if (kind === undefined || (res.destroyed && failure instanceof Error)) return void logger.debug({ route: route.prefix }, 'client went away; upstream request cut');
    logger.warn(
      { route: route.prefix, reason: failure instanceof Error ? ((failure as Error & { code?: string }).code ?? failure.name) : failure },
      kind === 'busy' ? 'no upstream connection free' : kind === 'timeout' ? 'upstream timed out' : 'upstream request failed',
    );
    if (res.headersSent || res.destroyed) return void res.destroy();
    sendProblem(res, kind === 'busy' ? problems.upstreamBusy(route.timeoutMs) : kind === 'timeout' ? problems.upstreamTimeout(route.timeoutMs) : problems.upstreamUnavailable());
  }

  function dispatch(req: IncomingMessage, res: ServerResponse, body: RequestBody, proof: UpstreamProof | undefined): void {
    const headers = req.headers as Record<string, string | string[]>;
    headers.host = host;
    if (proof) headers.dpop = sign(req, proof);
    // undici frames the body itself: Content-Length for a known length, chunked otherwise.
    if (body.kind === 'stream' && body.length !== undefined) headers['content-length'] = String(body.length);
    else if (body.kind === 'none' && body.emptyLength) headers['content-length'] = '0';
    const exchange = new UpstreamExchange(context, req, res, body, proof);
    const options: Dispatcher.DispatchOptions = {
      path: req.url ?? '/',
      method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
      headers,
      body: body.kind === 'buffered' ? body.data : body.kind === 'stream' ? streamedBody(req, body.head) : null,
    };
    try {
      pool.dispatch(options, exchange);
    } catch (err) {
      exchange.cancel();
      fail(err as Error, res);
    }
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
  function retryWithNonce(statusCode: number, headers: Record<string, string | string[] | undefined>, body: RequestBody): boolean {
    const nonce = headers['dpop-nonce'];
    if (typeof nonce !== 'string' || nonce === '') return false;
    nonces.set(origin, nonce);
    return statusCode === 401 && body.kind !== 'stream' && asksForNonce(headers['www-authenticate']);
  }

  return {
    route,
    handle: dispatch,
    close: () => void pool.destroy().catch(() => undefined),
  };
}
