/** The session store (Redis) failed or timed out; requests that need a session answer 503. */
export class SessionStoreError extends Error {
  readonly code = 'session_store_unavailable';
  constructor(cause: unknown) {
    super('session store unavailable', { cause });
  }
}
