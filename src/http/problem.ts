import type { ServerResponse } from 'node:http';

/**
 * An error the gateway answers with itself: a stable machine-readable `code`
 * for the SPA and a `detail` a person can act on. Never carries internals.
 */
export class HttpProblem extends Error {
  readonly status: number;
  readonly code: string;
  readonly title: string;
  readonly headers: Readonly<Record<string, string>>;
  constructor(status: number, code: string, detail: string, headers: Record<string, string> = {}) {
    super(detail);
    this.status = status;
    this.code = code;
    this.title = TITLES[status] ?? 'Error';
    this.headers = headers;
  }
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Content Too Large',
  414: 'URI Too Long',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

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
    ...(instance ? { instance } : {}),
  });
}

export const problems = {
  notAuthenticated: () => new HttpProblem(401, 'not_authenticated', 'No signed-in session: sign in at /auth/login first.'),
  tokenExpired: () => new HttpProblem(401, 'token_expired', 'The access token of this session has expired: sign in again at /auth/login.'),
  csrfMissing: (header: string) => new HttpProblem(403, 'csrf_header_missing', `This request must carry the header "${header}: 1" (send it with fetch from the same origin).`),
  crossSite: () => new HttpProblem(403, 'cross_site_request', 'Cross-site requests are refused: call the gateway from a page of its own origin.'),
  sessionStoreUnavailable: () => new HttpProblem(503, 'session_store_unavailable', 'The session store is unreachable; retry shortly.', { 'Retry-After': '5' }),
  storeUnavailable: () => new HttpProblem(503, 'store_unavailable', 'The gateway\'s store is unreachable; retry shortly.', { 'Retry-After': '5' }),
  idpUnavailable: () => new HttpProblem(503, 'idp_unavailable', 'The OpenID provider is not reachable yet; retry shortly.', { 'Retry-After': '5' }),
};
