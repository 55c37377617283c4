import session from 'express-session';
import type { SessionData } from 'express-session';
import { parseHandle } from './handles.ts';
import type { SessionRepository } from './repository.ts';
import type { SessionState } from './types.ts';

type Callback = (err?: unknown) => void;
type GetCallback = (err: unknown, session?: SessionData | null) => void;

/** The session cookie as configured: what express-session would set on a new session. */
export interface SessionCookieOptions {
  maxAgeMs: number;
  httpOnly: boolean;
  secure: boolean;
  sameSite: 'strict' | 'lax';
  path: string;
}

/**
 * express-session's callback store interface over the session repository,
 * so that `/auth` reads and writes sessions exactly as every other path does.
 * express-session names sessions by their handle (the id in the cookie).
 *
 * Records do not keep express-session's cookie: it is the configuration's
 * attributes and an expiry that follows from when the session was made, so it
 * is rebuilt here, where express-session needs it (it sets the cookie again
 * from it when a request changes the session).
 */
export class ExpressSessionStore extends session.Store {
  private readonly repository: SessionRepository;
  private readonly cookie: SessionCookieOptions;

  constructor(repository: SessionRepository, cookie: SessionCookieOptions) {
    super();
    this.repository = repository;
    this.cookie = cookie;
  }

  override get(handle: string, callback: GetCallback): void {
    void this.repository.load(handle).then((data) => callback(null, data ? this.withCookie(data) : null), callback);
  }

  override set(handle: string, data: SessionData, callback?: Callback): void {
    void this.repository.save(handle, data).then(
      () => callback?.(),
      (err: unknown) => callback?.(err),
    );
  }

  /** Slides the idle timeout; express-session calls it on requests that did not change the session. */
  override touch(handle: string, data: SessionData, callback?: Callback): void {
    void this.repository.touch(handle, data).then(
      () => callback?.(),
      (err: unknown) => callback?.(err),
    );
  }

  override destroy(handle: string, callback?: Callback): void {
    const parts = parseHandle(handle);
    if (!parts) return callback?.();
    void this.repository.destroy(parts.storeId).then(
      () => callback?.(),
      (err: unknown) => callback?.(err),
    );
  }

  /**
   * The cookie express-session gave the session when it was made: the
   * configured attributes, expiring the cookie's max age after the login (the
   * session's creation; a session without a user has none, so from now), and
   * never before the session's absolute deadline (the max age may have been
   * shortened since the login).
   */
  private withCookie(data: SessionState): SessionData {
    const { maxAgeMs, ...attributes } = this.cookie;
    const expires = Math.max((data.user?.createdAt ?? Date.now()) + maxAgeMs, data.user?.absoluteExpiresAt ?? 0);
    // The shape express-session serialises a Cookie to, which its Store#createSession turns back into one.
    const cookie = { ...attributes, originalMaxAge: maxAgeMs, expires: new Date(expires).toISOString() };
    return { ...data, cookie } as unknown as SessionData;
  }
}
