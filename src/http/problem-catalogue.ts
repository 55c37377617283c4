import { IdpUnavailableError } from '../oidc/errors.ts';
import { SessionStoreError, StoreUnavailableError } from '../store/errors.ts';
import { HttpProblem } from './problem.ts';

/** What every answer with one code shares. */
export interface ProblemType {
  readonly status: number;
  readonly title: string;
}

/**
 * Every problem `code` the gateway answers with, and its status and title.
 * The codes are a public contract that SPAs switch on (the README lists them,
 * a unit test holds the two together): add codes, never rename one.
 */
export const PROBLEM_CATALOGUE = {
  // Who is calling
  not_authenticated: { status: 401, title: 'Unauthorized' },
  session_expired: { status: 401, title: 'Unauthorized' },
  token_expired: { status: 401, title: 'Unauthorized' },
  logout_sid_mismatch: { status: 400, title: 'Bad Request' },
  invalid_logout_request: { status: 400, title: 'Bad Request' },
  csrf_header_missing: { status: 403, title: 'Forbidden' },
  cross_site_request: { status: 403, title: 'Forbidden' },
  origin_required: { status: 403, title: 'Forbidden' },
  // What the route allows
  forbidden: { status: 403, title: 'Forbidden' },
  step_up_required: { status: 401, title: 'Unauthorized' },
  step_up_not_declared: { status: 400, title: 'Bad Request' },
  token_exchange_refused: { status: 403, title: 'Forbidden' },
  route_token_refused: { status: 403, title: 'Forbidden' },
  // Where to
  not_found: { status: 404, title: 'Not Found' },
  route_not_found: { status: 404, title: 'Not Found' },
  method_not_allowed: { status: 405, title: 'Method Not Allowed' },
  bad_path: { status: 400, title: 'Bad Request' },
  websocket_required: { status: 400, title: 'Bad Request' },
  websocket_not_enabled: { status: 404, title: 'Not Found' },
  // What the request looks like and costs
  bad_request: { status: 400, title: 'Bad Request' },
  bad_framing: { status: 400, title: 'Bad Request' },
  url_too_long: { status: 414, title: 'URI Too Long' },
  headers_too_large: { status: 431, title: 'Request Header Fields Too Large' },
  request_timeout: { status: 408, title: 'Request Timeout' },
  chunk_extensions_too_large: { status: 413, title: 'Content Too Large' },
  rate_limited: { status: 429, title: 'Too Many Requests' },
  too_many_uploads: { status: 429, title: 'Too Many Requests' },
  // What the gateway depends on
  session_store_unavailable: { status: 503, title: 'Service Unavailable' },
  store_unavailable: { status: 503, title: 'Service Unavailable' },
  idp_unavailable: { status: 503, title: 'Service Unavailable' },
  idp_refused_login: { status: 502, title: 'Bad Gateway' },
  client_token_unavailable: { status: 503, title: 'Service Unavailable' },
  upstream_unavailable: { status: 502, title: 'Bad Gateway' },
  upstream_timeout: { status: 504, title: 'Gateway Timeout' },
  upstream_busy: { status: 503, title: 'Service Unavailable' },
  spa_dev_server_unavailable: { status: 502, title: 'Bad Gateway' },
  internal_error: { status: 500, title: 'Internal Server Error' },
} as const satisfies Record<string, ProblemType>;

export type ProblemCode = keyof typeof PROBLEM_CATALOGUE;

/**
 * Titles by status, for the one code whose status is not fixed: `bad_request`
 * passes on the 4xx status of a client error that Express or a body parser
 * raised (413, 415, …). A status not listed here is titled `Error`.
 */
export const STATUS_TITLES: Readonly<Record<number, string>> = {
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

function problem(code: ProblemCode, detail: string, headers: Record<string, string> = {}, members: Record<string, string> = {}): HttpProblem {
  const { status, title } = PROBLEM_CATALOGUE[code];
  return new HttpProblem(status, code, title, detail, headers, members);
}

/** Why a front-channel logout request names no sessions to end. */
export type LogoutRequestFault = 'iss_missing' | 'sid_missing' | 'iss_mismatch';
const LOGOUT_REQUEST_FAULTS: Record<LogoutRequestFault, string> = {
  iss_missing: 'iss is missing: the identity provider must send its issuer identifier (frontchannel_logout_session_required=true).',
  sid_missing: 'sid is missing: the identity provider must send its session id (frontchannel_logout_session_required=true).',
  iss_mismatch: 'iss is not the issuer this gateway is configured for.',
};

/** How a request body's framing is ambiguous. */
export type FramingFault = 'mixed_framing' | 'bad_content_length';
const FRAMING_FAULTS: Record<FramingFault, string> = {
  mixed_framing: 'The request body must be framed by Content-Length or by Transfer-Encoding: chunked alone.',
  bad_content_length: 'The Content-Length header is not a single whole number.',
};

/** The problems themselves, one constructor per message; the values a message names are typed parameters. */
export const problems = {
  notAuthenticated: () => problem('not_authenticated', 'No signed-in session: sign in at /auth/login first.'),
  sessionExpired: () => problem('session_expired', 'The identity provider no longer accepts this session (it was revoked or has expired): sign in again at /auth/login.'),
  tokenExpired: () => problem('token_expired', 'The access token of this session has expired: sign in again at /auth/login.'),
  logoutSidMismatch: () => problem('logout_sid_mismatch', 'Log out through the logoutUrl that /auth/user returns (its sid must match this session).'),
  invalidLogoutRequest: (fault: LogoutRequestFault) => problem('invalid_logout_request', LOGOUT_REQUEST_FAULTS[fault]),
  csrfMissing: (header: string) => problem('csrf_header_missing', `This request must carry the header "${header}: 1" (send it with fetch from the same origin).`),
  crossSite: () => problem('cross_site_request', 'Cross-site requests are refused: call the gateway from a page of its own origin.'),
  originRequired: () => problem('origin_required', 'WebSocket upgrades must carry the Origin header of the gateway.'),

  /** Names the route, never a claim or its value: what the user lacks is not the caller's to learn. */
  forbidden: (prefix: string) => problem('forbidden', `This session is not allowed to use ${prefix}.`),
  /** `loginUrl` starts a login that asks for what the route needs and comes back to the caller's page. */
  stepUpRequired: (loginUrl: string) =>
    problem(
      'step_up_required',
      'This request needs a stronger or more recent sign-in: navigate to loginUrl, then retry.',
      { 'WWW-Authenticate': 'Bearer error="insufficient_user_authentication"' },
      { loginUrl },
    ),
  stepUpNotDeclared: (parameter: 'acr_values' | 'max_age') =>
    problem('step_up_not_declared', `${parameter} may only ask for what a route's stepUp declares; use the loginUrl of a step_up_required answer.`),
  tokenExchangeRefused: (prefix: string) =>
    problem('token_exchange_refused', `The identity provider refused to exchange this session's token for one meant for ${prefix}; the administrators can find the reason in the gateway log.`),
  /** A `resource` the IdP will not bind this session's token to (RFC 8707 `invalid_target`): configuration, not the session, is at fault. */
  routeTokenRefused: (prefix: string) =>
    problem('route_token_refused', `The identity provider refused to issue this session a token for the resource of ${prefix}; the administrators can find the reason in the gateway log.`),

  notFound: (path: string) => problem('not_found', `Nothing is served at ${path}.`),
  webSocketNotFound: () => problem('not_found', 'No WebSocket is served here.'),
  routeNotFound: (path: string) => problem('route_not_found', `No API route is configured for ${path}.`),
  methodNotAllowed: (method: string | undefined, prefix: string, allowed: readonly string[]) =>
    problem('method_not_allowed', `${method ?? 'This method'} is not allowed on ${prefix}.`, { Allow: allowed.join(', ') }),
  /** `reason` is the path normaliser's own words, e.g. `malformed percent-encoding`. */
  pathNotAcceptable: (reason: string) => problem('bad_path', `The request path is not acceptable: ${reason}.`),
  pathLeavesApi: () => problem('bad_path', 'The request path leaves /api once normalised.'),
  pathLeavesPrefix: () => problem('bad_path', 'The request path climbs out of its route prefix.'),
  webSocketRequired: () => problem('websocket_required', 'Only WebSocket upgrades (GET with "Upgrade: websocket") are accepted.'),
  webSocketNotEnabled: (prefix: string) => problem('websocket_not_enabled', `The route ${prefix} does not accept WebSockets ("websocket": true enables them).`),

  /** A client error raised by Express or a body parser, with its own 4xx status. */
  clientError: (status: number) => new HttpProblem(status, 'bad_request', STATUS_TITLES[status] ?? 'Error', 'The request could not be understood.'),
  notHttp: () => problem('bad_request', 'The request is not valid HTTP/1.1.'),
  badFraming: (fault: FramingFault) => problem('bad_framing', FRAMING_FAULTS[fault]),
  urlTooLong: (maxLength: number) => problem('url_too_long', `The URL is longer than ${maxLength} characters; send large data in a request body instead.`),
  headersTooLarge: (maxHeaderBytes: number) => problem('headers_too_large', `The request line and headers are larger than ${maxHeaderBytes} bytes; send fewer or smaller cookies or headers.`),
  headersTimeout: (timeoutMs: number) => problem('request_timeout', `The request headers did not arrive within ${timeoutMs / 1000} s.`),
  chunkExtensionsTooLarge: () => problem('chunk_extensions_too_large', 'The chunk extensions of the request body are too large.'),
  rateLimited: (limitName: string, limit: number, windowMs: number, retryAfterSec: number) =>
    problem('rate_limited', `Too many ${limitName} requests from this address (at most ${limit} per ${windowMs / 1000} s); retry in ${retryAfterSec} s.`, {
      'Retry-After': String(retryAfterSec),
    }),
  tooManyUploads: (perClient: number) => problem('too_many_uploads', `At most ${perClient} large uploads may stream at once from one client; retry when one has finished.`, { 'Retry-After': '5' }),

  sessionStoreUnavailable: () => problem('session_store_unavailable', 'The session store is unreachable; retry shortly.', { 'Retry-After': '5' }),
  /** The store failed outside any session (a login transaction, a rate limit): nothing says the caller's session is in trouble. */
  storeUnavailable: () => problem('store_unavailable', "The gateway's store is unreachable; retry shortly.", { 'Retry-After': '5' }),
  idpUnavailable: () => problem('idp_unavailable', 'The OpenID provider is not reachable yet; retry shortly.', { 'Retry-After': '5' }),
  /** The session is kept: only its token could not be renewed. */
  idpRenewalUnavailable: (retryAfterSec: number) =>
    problem('idp_unavailable', "The OpenID provider could not renew this session's access token just now; the session is kept: retry shortly.", {
      'Retry-After': String(retryAfterSec),
    }),
  idpRefusedLogin: () => problem('idp_refused_login', 'The OpenID provider refused to start a sign-in; the administrators can find the reason in the gateway log.'),
  clientTokenUnavailable: () => problem('client_token_unavailable', 'The gateway could not obtain its own access token from the identity provider; retry shortly.', { 'Retry-After': '5' }),
  upstreamUnavailable: () => problem('upstream_unavailable', 'The upstream service could not be reached.'),
  upstreamTimeout: (timeoutMs: number) => problem('upstream_timeout', `The upstream service did not answer within ${timeoutMs} ms.`),
  upstreamHandshakeTimeout: (timeoutMs: number) => problem('upstream_timeout', `The upstream service did not answer the WebSocket handshake within ${timeoutMs} ms.`),
  upstreamBusy: (timeoutMs: number) => problem('upstream_busy', `The upstream service has no free connection within ${timeoutMs} ms; retry shortly.`, { 'Retry-After': '1' }),
  spaDevServerUnavailable: (origin: string) => problem('spa_dev_server_unavailable', `The SPA dev server at ${origin} is not reachable: start it (e.g. npm run dev).`),
  internalError: () => problem('internal_error', 'Something went wrong inside the gateway; the request id in the x-request-id header helps the administrators find it.'),
  /** A WebSocket upgrade that failed after its checks: the store being down is worth a retry, anything else is the gateway's fault. */
  webSocketNotOpened: (cause: HttpProblem) => problem(cause.code === 'session_store_unavailable' ? 'session_store_unavailable' : 'internal_error', 'The WebSocket could not be opened; retry shortly.'),
};

/**
 * The problem to answer for anything thrown while handling a request: a
 * problem as it is, a failing dependency as its own code, a client error
 * raised by Express as `bad_request` with its status, anything else as
 * `internal_error` (never with internals).
 */
export function problemFor(err: unknown): HttpProblem {
  if (err instanceof HttpProblem) return err;
  if (err instanceof SessionStoreError) return problems.sessionStoreUnavailable();
  if (err instanceof StoreUnavailableError) return problems.storeUnavailable();
  if (err instanceof IdpUnavailableError) return problems.idpUnavailable();
  const status = typeof err === 'object' && err !== null && 'status' in err && typeof err.status === 'number' ? err.status : 500;
  if (status >= 400 && status < 500) return problems.clientError(status);
  return problems.internalError();
}
