import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';

/**
 * What the access log and the metrics learn about one request while it
 * passes through the gateway. One object per request, filled in place by
 * the seams that know (the upstream wrapper, the session reader) and
 * settled once when the response ends, so that the log line and the
 * metrics agree to the microsecond.
 */
interface RequestFacts {
  startedAt: number;
  requestId: string;
  /** The URL as received: the proxy rewrites `req.url` to the upstream's path. */
  url: string;
  /** The API route prefix, once the request was handed to that route's upstream. */
  route: string | undefined;
  upstreamStartedAt: number | undefined;
  /** The subject of the session the proxy loaded for this request, if any. */
  sub: string | undefined;
}

export interface RequestOutcome {
  requestId: string;
  /** The path as received, without the query string (which may hold codes and states). */
  path: string;
  /** A bounded label: an API route prefix, an /auth endpoint, `/api` (no route) or `other`. */
  route: string;
  /** `2xx` … `5xx`, or `aborted` when the client left before any response was sent. */
  statusClass: string;
  seconds: number;
  /** From the hand-over to the upstream to the end of the response; undefined when no upstream was involved. */
  upstreamSeconds: number | undefined;
  /** Whether the request belonged to a signed-in session that the gateway loaded. */
  session: boolean;
  sub: string | undefined;
}

const FACTS = Symbol('bff.requestFacts');
type Observed = IncomingMessage & { [FACTS]?: RequestFacts; session?: { user?: { sub: string } } };

export function beginRequest(req: IncomingMessage, requestId: string): void {
  (req as Observed)[FACTS] = { startedAt: performance.now(), requestId, url: req.url ?? '/', route: undefined, upstreamStartedAt: undefined, sub: undefined };
}

/** The request is handed to the upstream of `route` now. */
export function noteUpstream(req: IncomingMessage, route: string): void {
  const facts = (req as Observed)[FACTS];
  if (!facts) return;
  facts.route = route;
  facts.upstreamStartedAt = performance.now();
}

/** The proxy loaded a signed-in session for this request. */
export function noteSession(req: IncomingMessage, sub: string): void {
  const facts = (req as Observed)[FACTS];
  if (facts) facts.sub = sub;
}

/** The request's outcome, when its response has closed: one computation for the access log and the metrics alike. */
export function settle(req: IncomingMessage, res: ServerResponse, label: (path: string) => string): RequestOutcome | undefined {
  const observed = req as Observed;
  const facts = observed[FACTS];
  if (!facts) return undefined;
  const now = performance.now();
  const queryAt = facts.url.indexOf('?');
  const path = queryAt < 0 ? facts.url : facts.url.slice(0, queryAt);
  // express-session's req.session on /auth routes; the proxy's own lean session read otherwise.
  const sub = facts.sub ?? observed.session?.user?.sub;
  return {
    requestId: facts.requestId,
    path,
    route: facts.route ?? label(path),
    statusClass: res.headersSent ? `${Math.floor(res.statusCode / 100)}xx` : 'aborted',
    seconds: (now - facts.startedAt) / 1000,
    upstreamSeconds: facts.upstreamStartedAt === undefined ? undefined : (now - facts.upstreamStartedAt) / 1000,
    session: sub !== undefined,
    sub,
  };
}

const AUTH_ENDPOINTS = new Set(['/auth/login', '/auth/callback', '/auth/user', '/auth/logout', '/auth/backchannel-logout']);

/**
 * Maps a raw request path to a label of bounded cardinality: the longest
 * configured API prefix it falls under, a known /auth endpoint, `/api` for
 * API paths no route serves, and `other` for the rest (the SPA, 404s).
 */
export function routeLabeller(prefixes: readonly string[]): (path: string) => string {
  const sorted = [...prefixes].sort((a, b) => b.length - a.length);
  return (path) => {
    if (path === '/api' || path.startsWith('/api/')) {
      for (const prefix of sorted) if (path === prefix || (path.startsWith(prefix) && path.charCodeAt(prefix.length) === 47)) return prefix;
      return '/api';
    }
    return AUTH_ENDPOINTS.has(path) ? path : 'other';
  };
}
