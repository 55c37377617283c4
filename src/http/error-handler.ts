import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorRequestHandler } from 'express';
import type { Logger } from 'pino';
import { IdpUnavailableError } from '../oidc/errors.ts';
import { SessionStoreError, StoreUnavailableError } from '../store/errors.ts';
import { HttpProblem, problems, sendProblem } from './problem.ts';

/** Answers a request whose handling threw; `path` (without query) is what a log line may name. */
export type ErrorResponder = (err: unknown, req: IncomingMessage, res: ServerResponse, path: string) => void;

/**
 * Last stop for errors: a problem document with a code, never a stack trace.
 * A response already under way cannot change its status: it is cut off, so the
 * client sees a broken response rather than a truncated one passed as whole.
 */
export function errorResponder(logger: Logger): ErrorResponder {
  return (err, _req, res, path) => {
    if (res.headersSent) {
      if (!res.writableEnded) res.destroy();
      return;
    }
    if (err instanceof HttpProblem) return sendProblem(res, err);
    if (err instanceof SessionStoreError) {
      logger.warn({ path }, 'session store unavailable');
      return sendProblem(res, problems.sessionStoreUnavailable());
    }
    if (err instanceof StoreUnavailableError) {
      logger.warn({ path }, 'store unavailable');
      return sendProblem(res, problems.storeUnavailable());
    }
    if (err instanceof IdpUnavailableError) return sendProblem(res, problems.idpUnavailable());
    const status = typeof err === 'object' && err !== null && 'status' in err && typeof err.status === 'number' ? err.status : 500;
    if (status >= 400 && status < 500) {
      // Express's own client errors (e.g. a malformed URL).
      return sendProblem(res, new HttpProblem(status, 'bad_request', 'The request could not be understood.'));
    }
    logger.error({ err: err instanceof Error ? { name: err.name, message: err.message, stack: err.stack } : String(err), path }, 'unhandled error');
    sendProblem(res, new HttpProblem(500, 'internal_error', 'Something went wrong inside the gateway; the request id in the x-request-id header helps the administrators find it.'));
  };
}

/** The same, as the Express app's error handler. */
export function errorHandler(respond: ErrorResponder): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => respond(err, req, res, req.path);
}
