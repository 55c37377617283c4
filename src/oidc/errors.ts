/**
 * What can go wrong when the gateway talks to the OpenID provider, in the
 * gateway's own terms. `src/oidc/` turns every failure of openid-client into
 * one of these three, so that nothing else in the code base needs to know
 * openid-client's error classes:
 *
 * - `IdpRefusedError`: the provider answered with an OAuth error (RFC 6749
 *   §5.2 body, a `WWW-Authenticate` challenge, or an authorization error
 *   response). It said no, and why.
 * - `IdpUnavailableError`: no usable answer at all — metadata not loaded yet,
 *   connection refused or dropped, timeout, a 5xx, a 429 without an error code.
 * - `IdpInvalidResponseError`: an answer that is not what the protocol
 *   requires (validation failed, not JSON, an unexpected status).
 *
 * Each carries a log-safe `reason` (an error or status code, never a body,
 * a description or a token) and the HTTP status when there was one.
 */

/** Where the provider said no. */
export type IdpEndpoint = 'authorization' | 'par' | 'token' | 'revocation' | 'userinfo' | 'discovery';

/** The provider answered with an OAuth error: `error` is its code (log-safe: checked against a strict pattern). */
export class IdpRefusedError extends Error {
  readonly kind = 'refused';
  readonly code = 'idp_refused';
  /** The OAuth `error` code, e.g. `invalid_grant`, `invalid_client`. */
  readonly error: string;
  /** The provider's own words; shown to operators (`--check`), never logged (it is free text from outside). */
  readonly errorDescription: string | undefined;
  /** Undefined for an authorization error response (it arrives in the callback's query, not over HTTP). */
  readonly status: number | undefined;
  readonly endpoint: IdpEndpoint;
  constructor(endpoint: IdpEndpoint, error: string, errorDescription: string | undefined, status: number | undefined) {
    super(`the OpenID provider refused the request at its ${endpoint} endpoint: ${error}${status === undefined ? '' : ` (HTTP ${status})`}`);
    this.endpoint = endpoint;
    this.error = error;
    this.errorDescription = errorDescription;
    this.status = status;
  }
  get reason(): string {
    return this.error;
  }
}

/** The OpenID provider could not be asked, or could not answer: try again later. */
export class IdpUnavailableError extends Error {
  readonly kind = 'unavailable';
  readonly code = 'idp_unavailable';
  /** `metadata_not_loaded`, a socket error code (`ECONNREFUSED`, `UND_ERR_SOCKET`), `timeout`, or `http_<status>`. */
  readonly reason: string;
  /** The HTTP status of a 5xx or 429 answer. */
  readonly status: number | undefined;
  constructor(reason = 'metadata_not_loaded', status?: number, cause?: unknown) {
    super(`OpenID provider unavailable (${reason})`, { cause });
    this.reason = reason;
    this.status = status;
  }
}

/** The provider answered, but not as the protocol requires (or the answer failed validation). */
export class IdpInvalidResponseError extends Error {
  readonly kind = 'invalid_response';
  readonly code = 'idp_invalid_response';
  /** openid-client's error code, e.g. `OAUTH_JWT_CLAIM_COMPARISON`, `OAUTH_RESPONSE_IS_NOT_JSON`. */
  readonly reason: string;
  readonly status: number | undefined;
  constructor(reason: string, status?: number, cause?: unknown) {
    super(`the OpenID provider's response is invalid (${reason})`, { cause });
    this.reason = reason;
    this.status = status;
  }
}

export type IdpError = IdpRefusedError | IdpUnavailableError | IdpInvalidResponseError;

export function isIdpError(err: unknown): err is IdpError {
  return err instanceof IdpRefusedError || err instanceof IdpUnavailableError || err instanceof IdpInvalidResponseError;
}

/**
 * The provider refused the gateway's own client authentication: `invalid_client`
 * (RFC 6749 §5.2; a 401 from the token endpoint means the same), or
 * `unauthorized_client`, which some providers (Keycloak among them) answer
 * for a wrong secret too.
 */
export function isClientRefusal(err: IdpRefusedError): boolean {
  return err.error === 'invalid_client' || err.error === 'unauthorized_client' || err.status === 401;
}

/** True when the IdP could not be reached or could not answer (as opposed to answering with an error). */
export function isNetworkError(err: unknown): boolean {
  return err instanceof IdpUnavailableError;
}

/** A log line, a metric label and a page may name an OAuth error code only if it looks like one. */
export function safeErrorCode(value: unknown): string | undefined {
  return typeof value === 'string' && /^[A-Za-z0-9_.:-]{1,64}$/.test(value) ? value : undefined;
}

/** For an operator's eyes (`--check`): printable, one line, short. */
export function safeDescription(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const text = value
    .replace(/[^\x20-\x7e]/g, ' ')
    .trim()
    .slice(0, 200);
  return text === '' ? undefined : text;
}
