import type { IdpError } from '../oidc/errors.ts';

/** OAuth errors that mean "not now" rather than "no": the refresh token may still be good. */
const RETRY_LATER_ERRORS = new Set(['temporarily_unavailable', 'slow_down']);

/**
 * What a failed refresh means for the session (DESIGN.md, Proxying). Any
 * OAuth error other than `temporarily_unavailable` or `slow_down` ends it:
 * providers answer a dead refresh token with `invalid_grant`, but also with
 * `invalid_request`, `unauthorized_client` and others, and a session whose
 * refresh the provider refuses can never recover. A provider that cannot
 * answer (transport failure, 5xx, 429) or answers nonsense is transient: the
 * session is kept and the refresh tried again after a back-off.
 */
export function refreshFailureEndsSession(failure: IdpError): boolean {
  return idpSaidNo(failure);
}

/**
 * The IdP refused for good (an OAuth error that is not "not now"), as opposed
 * to a transient failure worth retrying after a back-off. The same line for
 * every grant the gateway sends for a session: refresh, resource, exchange.
 */
export function idpSaidNo(failure: IdpError): boolean {
  if (failure.kind !== 'refused') return false;
  if (failure.status !== undefined && (failure.status === 429 || failure.status >= 500)) return false;
  return !RETRY_LATER_ERRORS.has(failure.error);
}
