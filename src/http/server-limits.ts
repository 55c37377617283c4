import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { ConnectionLimits } from '../config/types.ts';
import { problems } from './problem-catalogue.ts';
import { type HttpProblem, writeRawProblem } from './problem.ts';

/**
 * Options for `http.createServer`: what one client connection may cost.
 *
 * - `maxHeaderSize`: request line plus headers; beyond it, 431.
 * - `headersTimeout`: from a request's first byte to the end of its headers, so a
 *   client that sends its headers byte by byte (slow-loris) is cut off; an idle new
 *   connection that sends nothing is cut off after the same time.
 * - `requestTimeout: 0`: Node's request timeout is a deadline on receiving the
 *   whole request, body included, so any value cuts a legitimate upload that is
 *   merely large or on a slow link (Node's default, 300 s, cuts a 1 GB upload at
 *   27 Mbit/s). Bodies get an idle timeout instead (`guardConnections`): a body that
 *   keeps moving is never cut, one that stalls is.
 * - `keepAliveTimeout`: longer than the 60 s idle timeout of the usual load
 *   balancers (AWS ALB, nginx), which would otherwise reuse a connection the
 *   gateway is closing and answer their client 502.
 * - `connectionsCheckingInterval`: how often Node enforces `headersTimeout`; its
 *   default (30 s) would let a slow-loris client stay up to 30 s longer.
 */
export function serverOptions(limits: ConnectionLimits): http.ServerOptions {
  return {
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: 0,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: Math.min(5000, Math.max(250, Math.floor(limits.headersTimeoutMs / 4))),
  };
}

/**
 * Answers the requests Node's parser refuses (too large, too slow, malformed)
 * with problem+json instead of a bare status line, and cuts request bodies
 * that stall for longer than the body idle timeout.
 */
export function guardConnections(server: http.Server, limits: ConnectionLimits, logger: Logger): void {
  server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => answerClientError(err, socket, limits, logger));
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => watchBody(req, res, limits.bodyIdleTimeoutMs, logger));
}

function answerClientError(err: Error & { code?: string }, socket: Duplex, limits: ConnectionLimits, logger: Logger): void {
  const problem = parserRefusal(err.code, limits);
  // Never write into a response that is already on its way (pipelined requests), nor to a peer that is gone.
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
  if (!problem || !socket.writable || inFlight) {
    socket.destroy();
    return;
  }
  if (problem.status === 431) logger.warn({ maxHeaderBytes: limits.maxHeaderBytes }, 'request refused: request line and headers too large');
  else logger.debug({ status: problem.status, reason: err.code }, 'request refused by the HTTP parser');
  writeRawProblem(socket, problem);
}

function parserRefusal(code: string | undefined, limits: ConnectionLimits): HttpProblem | undefined {
  switch (code) {
    case 'ECONNRESET':
      return undefined;
    case 'HPE_HEADER_OVERFLOW':
      return problems.headersTooLarge(limits.maxHeaderBytes);
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return problems.headersTimeout(limits.headersTimeoutMs);
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return problems.chunkExtensionsTooLarge();
    default:
      return problems.notHttp();
  }
}

function watchBody(req: http.IncomingMessage, res: http.ServerResponse, idleMs: number, logger: Logger): void {
  const length = req.headers['content-length'];
  if (req.headers['transfer-encoding'] === undefined && (length === undefined || length === '0')) return;
  const socket = req.socket;
  const stalled = (): void => {
    if (req.complete) return;
    logger.warn({ idleTimeoutSec: idleMs / 1000 }, 'request body stalled; connection closed');
    socket.destroy();
  };
  const done = (): void => {
    socket.off('timeout', stalled);
    // After the response has finished Node has set the keep-alive timeout on this socket: leave that one alone.
    if (!res.writableFinished) socket.setTimeout(0);
  };
  socket.setTimeout(idleMs);
  socket.on('timeout', stalled);
  req.once('end', done);
  req.once('close', () => socket.off('timeout', stalled));
}
