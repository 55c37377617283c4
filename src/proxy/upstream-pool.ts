import { Pool } from 'undici';
import type { RouteConfig } from '../config/types.ts';
import { upstreamTlsOptions } from './tls.ts';

/** Why an upstream request failed, as the gateway answers it. */
export type UpstreamFailure = 'busy' | 'timeout' | 'unavailable';

/**
 * A route's connection pool (undici), HTTP/1.1 only and never pipelined: at
 * most `maxConnections` kept-alive connections, one request at a time on each.
 * undici rather than `http.Agent`: the same request costs about 40 % less CPU
 * in the gateway (see README, Performance), and it frames, times and reuses
 * connections itself.
 */
export function createUpstreamPool(route: RouteConfig): Pool {
  const secure = route.target.protocol === 'https:';
  return new Pool(route.target.origin, {
    connections: route.maxConnections,
    pipelining: 1,
    // Connecting counts towards the route's timeout, like the wait for the response headers.
    connectTimeout: route.timeoutMs,
    headersTimeout: route.timeoutMs,
    // A response that has started may stay silent (an event stream): only its headers are bounded.
    bodyTimeout: 0,
    // A request body shorter or longer than its Content-Length is an error, never a request the upstream misreads.
    strictContentLength: true,
    ...(secure ? { connect: upstreamTlsOptions(route) } : {}),
  });
}

/** The answer for an undici error; undefined when the request was aborted on purpose (the browser went away). */
export function classifyUpstreamError(err: Error & { code?: string }): UpstreamFailure | undefined {
  switch (err.code) {
    case 'UND_ERR_ABORTED':
      return undefined;
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'timeout';
    default:
      return 'unavailable';
  }
}
