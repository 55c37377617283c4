import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorRequestHandler } from 'express';
import type { Logger } from 'pino';
import { SessionStoreError, StoreUnavailableError } from '../store/errors.ts';
import { problemFor } from './problem-catalogue.ts';
import { sendProblem } from './problem.ts';

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
    const problem = problemFor(err);
    if (err instanceof SessionStoreError) logger.warn({ path }, 'session store unavailable');
    else if (err instanceof StoreUnavailableError) logger.warn({ path }, 'store unavailable');
    else if (problem !== err && problem.code === 'internal_error') {
      logger.error({ err: err instanceof Error ? { name: err.name, message: err.message, stack: err.stack } : String(err), path }, 'unhandled error');
    }
    sendProblem(res, problem);
  };
}

/** The same, as the Express app's error handler. */
export function errorHandler(respond: ErrorResponder): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => respond(err, req, res, req.path);
}
