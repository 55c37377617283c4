import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import { requestIdOf } from '../http/request-id.ts';
import { accessLogger } from './logger.ts';
import type { GatewayMetrics } from './metrics.ts';
import { beginRequest, settle } from './request-facts.ts';

export interface HttpObserverDeps {
  logger: Logger;
  metrics: GatewayMetrics;
  /** Raw path → bounded route label (see `routeLabeller`). */
  label: (path: string) => string;
  /** BFF_LOG_SUB: put the user's `sub` into access log lines. */
  logSub: boolean;
}

type ObservedResponse = ServerResponse & { req: IncomingMessage };

/**
 * The first middleware of the main app: starts the request's facts, writes
 * the access log line (pino-http) and records the request metrics when the
 * response ends.
 */
export function httpObserver(deps: HttpObserverDeps): RequestHandler {
  const { metrics, label, logSub } = deps;

  function onClose(this: ObservedResponse): void {
    const outcome = settle(this.req, this, label);
    if (outcome) metrics.observeRequest(outcome.route, outcome.statusClass, outcome.seconds, outcome.upstreamSeconds);
  }

  const accessFields = (req: IncomingMessage, res: ServerResponse, fields: object): object => {
    const outcome = settle(req, res, label);
    if (!outcome) return fields;
    return {
      ...fields,
      route: outcome.route,
      ...(outcome.upstreamSeconds !== undefined ? { upstreamTime: Math.round(outcome.upstreamSeconds * 10_000) / 10 } : {}),
      session: outcome.session,
      ...(logSub && outcome.sub !== undefined ? { sub: outcome.sub } : {}),
    };
  };

  const accessLog = pinoHttp({
    logger: accessLogger(deps.logger),
    genReqId: (req, res) => {
      const id = requestIdOf(req);
      res.setHeader('x-request-id', id);
      return id;
    },
    // Only the path: query strings carry authorization codes and states. No headers: they carry cookies and tokens.
    serializers: {
      // originalUrl: the proxy rewrites req.url to the upstream path before the access log is written.
      req: (req: { id: string; method: string; url: string; originalUrl?: string }) => ({ id: req.id, method: req.method, path: (req.originalUrl ?? req.url).split('?')[0] }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
    wrapSerializers: false,
    quietReqLogger: true,
    // A 5xx is worth an error line; its `err` would only be pino-http's own "failed with status code" stand-in
    // (real errors are logged where they happen, with what is safe to say about them).
    customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : 'info'),
    customSuccessObject: accessFields,
    customErrorObject: (req, res, _err, fields) => {
      const { err: _standIn, ...rest } = fields as { err?: unknown };
      return accessFields(req, res, rest);
    },
  });

  return (req, res, next) => {
    beginRequest(req);
    res.once('close', onClose);
    accessLog(req, res, next);
  };
}
