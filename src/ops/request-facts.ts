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
  /** The API route prefix, once the request was handed to that route's upstream. */
  route: string | undefined;
  upstreamStartedAt: number | undefined;
  /** The subject of the session the proxy loaded for this request, if any. */
  sub: string | undefined;
  outcome: RequestOutcome | undefined;
}

export interface RequestOutcome {
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
type Observed = IncomingMessage & { [FACTS]?: RequestFacts; originalUrl?: string; session?: { user?: { sub: string } } };

export function beginRequest(req: IncomingMessage): void {
  (req as Observed)[FACTS] = { startedAt: performance.now(), route: undefined, upstreamStartedAt: undefined, sub: undefined, outcome: undefined };
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

/** The request's outcome, computed on first call (the access log at `finish`, or the metrics at `close`). */
export function settle(req: IncomingMessage, res: ServerResponse, label: (path: string) => string): RequestOutcome | undefined {
  const observed = req as Observed;
  const facts = observed[FACTS];
  if (!facts) return undefined;
  if (facts.outcome) return facts.outcome;
  const now = performance.now();
  const url = observed.originalUrl ?? req.url ?? '/';
  const queryAt = url.indexOf('?');
  // express-session's req.session on /auth routes; the proxy's own lean session read otherwise.
  const sub = facts.sub ?? observed.session?.user?.sub;
  facts.outcome = {
    route: facts.route ?? label(queryAt < 0 ? url : url.slice(0, queryAt)),
    statusClass: res.headersSent ? `${Math.floor(res.statusCode / 100)}xx` : 'aborted',
    seconds: (now - facts.startedAt) / 1000,
    upstreamSeconds: facts.upstreamStartedAt === undefined ? undefined : (now - facts.upstreamStartedAt) / 1000,
    session: sub !== undefined,
    sub,
  };
  return facts.outcome;
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
