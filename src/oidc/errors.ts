/** The OpenID provider's metadata is not loaded yet (it is unreachable); login answers 503. */
export class IdpUnavailableError extends Error {
  readonly code = 'idp_unavailable';
  constructor(cause?: unknown) {
    super('OpenID provider unavailable', { cause });
  }
}

/** True when the IdP could not be reached at all (connection refused, DNS, timeout), as opposed to answering with an error. */
export function isNetworkError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return true;
  return err instanceof TypeError && err.message === 'fetch failed';
}
