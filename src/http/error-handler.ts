import type { ErrorRequestHandler } from 'express';
import type { Logger } from 'pino';
import { IdpUnavailableError } from '../oidc/errors.ts';
import { SessionStoreError } from '../session/errors.ts';
import { HttpProblem, problems, sendProblem } from './problem.ts';

/** Last stop for errors: a problem document with a code, never a stack trace. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (err instanceof HttpProblem) return sendProblem(res, err);
    if (err instanceof SessionStoreError) {
      logger.warn({ path: req.path }, 'session store unavailable');
      return sendProblem(res, problems.sessionStoreUnavailable());
    }
    if (err instanceof IdpUnavailableError) return sendProblem(res, problems.idpUnavailable());
    const status = typeof err === 'object' && err !== null && 'status' in err && typeof err.status === 'number' ? err.status : 500;
    if (status >= 400 && status < 500) {
      // Express's own client errors (e.g. a malformed URL).
      return sendProblem(res, new HttpProblem(status, 'bad_request', 'The request could not be understood.'));
    }
    logger.error({ err: err instanceof Error ? { name: err.name, message: err.message, stack: err.stack } : String(err), path: req.path }, 'unhandled error');
    sendProblem(res, new HttpProblem(500, 'internal_error', 'Something went wrong inside the gateway; the request id in the x-request-id header helps the administrators find it.'));
  };
}
