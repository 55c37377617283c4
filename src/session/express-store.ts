import session from 'express-session';
import type { SessionData } from 'express-session';
import { parseHandle } from './handles.ts';
import type { SessionRepository } from './repository.ts';

type Callback = (err?: unknown) => void;
type GetCallback = (err: unknown, session?: SessionData | null) => void;

/**
 * express-session's callback store interface over the session repository,
 * so that `/auth` reads and writes sessions exactly as every other path does.
 * express-session names sessions by their handle (the id in the cookie).
 */
export class ExpressSessionStore extends session.Store {
  private readonly repository: SessionRepository;

  constructor(repository: SessionRepository) {
    super();
    this.repository = repository;
  }

  override get(handle: string, callback: GetCallback): void {
    void this.repository.load(handle).then((data) => callback(null, data ?? null), callback);
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
}
