import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ProblemCode } from './problem-catalogue.ts';

/**
 * An error the gateway answers with itself: a stable machine-readable `code`
 * for the SPA and a `detail` a person can act on. Never carries internals.
 * Made only by the catalogue (`problem-catalogue.ts`), which owns every code,
 * status, title and detail.
 */
export class HttpProblem extends Error {
  readonly status: number;
  readonly code: ProblemCode;
  readonly title: string;
  readonly headers: Readonly<Record<string, string>>;
  /** Extension members of the problem document (RFC 9457 §3.2), e.g. `loginUrl`. */
  readonly members: Readonly<Record<string, string>>;
  constructor(status: number, code: ProblemCode, title: string, detail: string, headers: Record<string, string> = {}, members: Record<string, string> = {}) {
    super(detail);
    this.status = status;
    this.code = code;
    this.title = title;
    this.headers = headers;
    this.members = members;
  }
}

/**
 * Writes an RFC 9457 problem document. Plain Node, so that the `/api` path
 * (which does not go through Express) and the Express routes answer alike.
 */
export function sendProblem(res: ServerResponse, problem: HttpProblem, instance?: string): void {
  const body = problemJson(problem, instance);
  res.statusCode = problem.status;
  for (const name in problem.headers) res.setHeader(name, problem.headers[name] as string);
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Content-Type', 'application/problem+json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** The RFC 9457 document, for answers written without Express (e.g. to a connection Node's parser refused). */
export function problemJson(problem: HttpProblem, instance?: string): string {
  return JSON.stringify({
    type: 'about:blank',
    title: problem.title,
    status: problem.status,
    detail: problem.message,
    code: problem.code,
    ...problem.members,
    ...(instance ? { instance } : {}),
  });
}

/** How long a refused client gets to read its answer before its connection is closed anyway. */
const CLOSE_AFTER_ANSWER_MS = 2000;

/**
 * Writes a problem straight to a connection that has no ServerResponse (one
 * Node's parser refused, an upgrade request) and closes it. The status line's
 * reason phrase is the problem's title.
 */
export function writeRawProblem(socket: Duplex, problem: HttpProblem): void {
  if (socket.destroyed) return;
  const body = problemJson(problem);
  const extra = Object.entries(problem.headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  socket.end(
    `HTTP/1.1 ${problem.status} ${problem.title}\r\n` +
      'Content-Type: application/problem+json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Cache-Control: no-store\r\n' +
      'X-Content-Type-Options: nosniff\r\n' +
      extra +
      'Connection: close\r\n\r\n' +
      body,
  );
  // end() lets the answer reach a client still sending (destroying at once could reset it first); a client that never closes is closed for it.
  setTimeout(() => socket.destroy(), CLOSE_AFTER_ANSWER_MS).unref();
}
