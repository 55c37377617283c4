import * as client from 'openid-client';
import { IdpInvalidResponseError, IdpRefusedError, IdpUnavailableError, isIdpError, safeErrorCode, type IdpEndpoint, type IdpError } from './errors.ts';

/** An error body larger than this is not an RFC 6749 error document: it is not read. */
const MAX_ERROR_BODY = 16 * 1024;

/**
 * Turns whatever a call through openid-client threw into one of the
 * gateway's three IdP failures. Every branch of openid-client's errors is
 * here, and nowhere else:
 *
 * - `ResponseBodyError`: a 4xx JSON error document → refused.
 * - `WWWAuthenticateChallengeError`: a challenge (401 `Basic` on a refused
 *   client login, `DPoP` nonces, ...) → refused, with the `error` parameter of
 *   the challenge, else of the JSON body, else `invalid_client` for a 401
 *   (the only error RFC 6749 §5.2 answers with 401).
 * - `AuthorizationResponseError`: the callback's `error=` → refused at the
 *   authorization endpoint.
 * - An unexpected status: 5xx and 429 → unavailable, 401 → refused
 *   (`invalid_client`), anything else → invalid response.
 * - Transport failures (fetch's `TypeError`, timeouts, aborts) → unavailable.
 * - Anything else openid-client found wrong (claims, signatures, JSON) →
 *   invalid response, named by openid-client's code.
 */
export async function classifyIdpError(err: unknown, endpoint: IdpEndpoint): Promise<IdpError> {
  if (isIdpError(err)) return err;
  if (err instanceof client.ResponseBodyError) {
    return new IdpRefusedError(endpoint, safeErrorCode(err.error) ?? 'invalid_error_code', err.error_description, err.status);
  }
  if (err instanceof client.WWWAuthenticateChallengeError) return challengeRefusal(err, endpoint);
  if (err instanceof client.AuthorizationResponseError) {
    return new IdpRefusedError('authorization', safeErrorCode(err.error) ?? 'invalid_error_code', err.error_description, undefined);
  }
  const transport = transportFailure(err);
  if (transport) return transport;
  if (err instanceof client.ClientError) {
    if (isResponse(err.cause)) return unexpectedStatus(err.cause, err.code ?? 'OAUTH_RESPONSE_IS_NOT_CONFORM', endpoint, err);
    return new IdpInvalidResponseError(safeErrorCode(err.code) ?? 'OAUTH_INVALID_RESPONSE', undefined, err);
  }
  return new IdpInvalidResponseError(safeErrorCode(codeOf(err)) ?? 'unexpected_error', undefined, err);
}

/**
 * A request that got no answer: fetch's `TypeError` ("fetch failed": refused,
 * reset, DNS; "terminated": dropped mid-body), a timeout or an abort, thrown
 * as such or wrapped by openid-client. Duck-typed: fetch's errors may come
 * from another realm (a test runner's VM context), where `instanceof` fails
 * and openid-client wraps them as "something went wrong".
 */
function transportFailure(err: unknown): IdpUnavailableError | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 3 && typeof current === 'object' && current !== null; depth++) {
    const { name, message } = current as { name?: unknown; message?: unknown };
    const code = codeOf(current);
    if (name === 'TimeoutError' || name === 'AbortError' || code === 'OAUTH_TIMEOUT' || code === 'OAUTH_ABORT') return new IdpUnavailableError('timeout', undefined, err);
    // openid-client's own TypeErrors (bad arguments) carry an ERR_ code; fetch's do not.
    if (name === 'TypeError' && code === undefined && (message === 'fetch failed' || message === 'terminated')) {
      return new IdpUnavailableError(transportCode(current as Error), undefined, err);
    }
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

function codeOf(value: unknown): string | undefined {
  const code = typeof value === 'object' && value !== null ? (value as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

/** A fetch Response, from whichever realm. */
function isResponse(value: unknown): value is Response {
  return typeof value === 'object' && value !== null && typeof (value as Response).status === 'number' && typeof (value as Response).clone === 'function' && 'headers' in value;
}

async function challengeRefusal(err: client.WWWAuthenticateChallengeError, endpoint: IdpEndpoint): Promise<IdpRefusedError> {
  const fromChallenge = err.cause.map((challenge) => challenge.parameters).find((parameters) => safeErrorCode(parameters.error));
  if (fromChallenge) return new IdpRefusedError(endpoint, fromChallenge.error as string, fromChallenge.error_description, err.status);
  const body = await errorBody(err.response);
  const error = safeErrorCode(body?.error) ?? (err.status === 401 ? 'invalid_client' : 'invalid_error_code');
  return new IdpRefusedError(endpoint, error, typeof body?.error_description === 'string' ? body.error_description : undefined, err.status);
}

async function unexpectedStatus(response: Response, code: string, endpoint: IdpEndpoint, cause: unknown): Promise<IdpError> {
  const { status } = response;
  if (status >= 500 || status === 429) return new IdpUnavailableError(`http_${status}`, status, cause);
  if (status === 401) {
    const body = await errorBody(response);
    return new IdpRefusedError(endpoint, safeErrorCode(body?.error) ?? 'invalid_client', typeof body?.error_description === 'string' ? body.error_description : undefined, status);
  }
  return new IdpInvalidResponseError(safeErrorCode(code) ?? 'OAUTH_RESPONSE_IS_NOT_CONFORM', status, cause);
}

/** The JSON error document of a response whose body nobody has read yet, if it is one. */
async function errorBody(response: Response | undefined): Promise<Record<string, unknown> | undefined> {
  if (!isResponse(response) || response.bodyUsed) return undefined;
  try {
    const text = await response.clone().text();
    if (text.length > MAX_ERROR_BODY) return undefined;
    const json: unknown = JSON.parse(text);
    return typeof json === 'object' && json !== null && !Array.isArray(json) ? (json as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The socket error code under fetch's TypeError (ECONNREFUSED, ECONNRESET, UND_ERR_SOCKET, ...). */
function transportCode(err: Error): string {
  let cause: unknown = err.cause;
  for (let depth = 0; depth < 4 && typeof cause === 'object' && cause !== null; depth++) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Z0-9_]{2,40}$/.test(code)) return code;
    const errors = (cause as { errors?: unknown }).errors;
    cause = Array.isArray(errors) && errors.length > 0 ? errors[0] : (cause as { cause?: unknown }).cause;
  }
  return err.message === 'terminated' ? 'connection_dropped' : 'fetch_failed';
}
