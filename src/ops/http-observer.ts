import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { requestIdOf } from '../http/request-id.ts';
import { accessLogger } from './logger.ts';
import type { GatewayMetrics } from './metrics.ts';
import { beginRequest, settle, type RequestOutcome } from './request-facts.ts';

export interface HttpObserverDeps {
  logger: Logger;
  metrics: GatewayMetrics;
  /** Raw path → bounded route label (see `routeLabeller`). */
  label: (path: string) => string;
  /** BFF_LOG_SUB: put the user's `sub` into access log lines. */
  logSub: boolean;
}

/** Sees every request on the main port before anything else does. */
export type HttpObserver = (req: IncomingMessage, res: ServerResponse) => void;

type ObservedResponse = ServerResponse & { req: IncomingMessage };

/**
 * The first thing every request meets: gives it its request id (echoed in
 * `x-request-id`), starts its facts, and when the response closes records
 * the request metrics and writes the one access log line. Written by hand
 * rather than with pino-http: that builds two child loggers and serialises
 * the request on every request, at any log level, on the proxy's hot path.
 */
export function httpObserver(deps: HttpObserverDeps): HttpObserver {
  const { metrics, label, logSub } = deps;
  const log = accessLogger(deps.logger);

  function onClose(this: ObservedResponse): void {
    const outcome = settle(this.req, this, label);
    if (!outcome) return;
    metrics.observeRequest(outcome.route, outcome.statusClass, outcome.seconds, outcome.upstreamSeconds);
    // A 5xx is worth an error line (the error itself is logged where it happened, with what is safe to say).
    const failed = this.statusCode >= 500;
    if (!log.isLevelEnabled(failed ? 'error' : 'info')) return;
    const line = accessLine(this.req.method ?? '', this.statusCode, outcome, logSub);
    if (failed) log.error(line, 'request errored');
    else log.info(line, this.writableEnded ? 'request completed' : 'request aborted');
  }

  return (req, res) => {
    const id = requestIdOf(req);
    res.setHeader('x-request-id', id);
    beginRequest(req, id);
    res.once('close', onClose);
  };
}

/**
 * Only fixed fields: the path without its query string (query strings carry
 * authorization codes and states) and no headers (they carry cookies and tokens).
 */
function accessLine(method: string, statusCode: number, outcome: RequestOutcome, logSub: boolean): object {
  return {
    reqId: outcome.requestId,
    req: { id: outcome.requestId, method, path: outcome.path },
    res: { statusCode },
    responseTime: milliseconds(outcome.seconds),
    route: outcome.route,
    ...(outcome.upstreamSeconds !== undefined ? { upstreamTime: milliseconds(outcome.upstreamSeconds) } : {}),
    session: outcome.session,
    ...(logSub && outcome.sub !== undefined ? { sub: outcome.sub } : {}),
  };
}

/** Milliseconds to a tenth. */
const milliseconds = (seconds: number): number => Math.round(seconds * 10_000) / 10;
