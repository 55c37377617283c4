import session from 'express-session';
import type { SessionData, Store } from 'express-session';
import { withDeadline } from '../store/deadline.ts';

type Callback = (err?: unknown) => void;
type GetCallback = (err: unknown, data?: SessionData | null) => void;

/**
 * An express-session store (connect-redis) whose every call answers within
 * the store deadline (store/deadline.ts): after it, the callback gets a
 * StoreUnavailableError, which the repository reports as the session store's,
 * and the store's own late answer is ignored.
 */
export class DeadlineStore extends session.Store {
  private readonly inner: Store;

  constructor(inner: Store) {
    super();
    this.inner = inner;
  }

  override get(recordId: string, callback: GetCallback): void {
    const read = new Promise<SessionData | null | undefined>((resolve, reject) => this.inner.get(recordId, (err, data) => (err ? reject(err) : resolve(data))));
    withDeadline(read).then((data) => callback(null, data), callback);
  }

  override set(recordId: string, data: SessionData, callback?: Callback): void {
    this.call(callback, (cb) => this.inner.set(recordId, data, cb));
  }

  override touch(recordId: string, data: SessionData, callback?: Callback): void {
    // Typed without an error argument, but connect-redis does pass one.
    const touch = this.inner.touch?.bind(this.inner) as ((recordId: string, data: SessionData, cb: Callback) => void) | undefined;
    if (!touch) return callback?.();
    this.call(callback, (cb) => touch(recordId, data, cb));
  }

  override destroy(recordId: string, callback?: Callback): void {
    this.call(callback, (cb) => this.inner.destroy(recordId, cb));
  }

  private call(callback: Callback | undefined, run: (cb: Callback) => void): void {
    const done = new Promise<void>((resolve, reject) => run((err?: unknown) => (err ? reject(err) : resolve())));
    withDeadline(done).then(
      () => callback?.(),
      (err: unknown) => callback?.(err),
    );
  }
}
