/**
 * The store (Redis, or memory for one instance) failed or did not answer in
 * time. Rate limits, login transactions and the logout-token replay cache
 * answer it as `store_unavailable`: the failure is not about any session.
 */
export class StoreUnavailableError extends Error {
  readonly code = 'store_unavailable';
  constructor(cause: unknown) {
    super('store unavailable', { cause });
  }
}

/**
 * The same failure met while a session was being read or written (the
 * session record, its refresh lock, the sid/sub index): requests that need a
 * session answer 503 `session_store_unavailable`, which the SPA knows means
 * "retry, you are still signed in".
 */
export class SessionStoreError extends Error {
  readonly code = 'session_store_unavailable';
  constructor(cause: unknown) {
    // Keeps the store's own failure as the cause, not a second wrapper around it.
    super('session store unavailable', { cause: cause instanceof StoreUnavailableError ? cause.cause : cause });
  }
}

/** Runs a store command on behalf of a session: a store failure becomes a SessionStoreError. */
export async function forSession<T>(command: Promise<T>): Promise<T> {
  try {
    return await command;
  } catch (err) {
    throw err instanceof StoreUnavailableError ? new SessionStoreError(err) : err;
  }
}
