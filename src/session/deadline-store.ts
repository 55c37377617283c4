import session from 'express-session';
import type { SessionData, Store } from 'express-session';
import { REDIS_DEADLINE_MS, RedisDeadlineError } from '../store/deadline.ts';
import { SessionStoreError } from '../store/errors.ts';

type Callback = (err?: unknown) => void;
type GetCallback = (err: unknown, data?: SessionData | null) => void;

/**
 * An express-session store (connect-redis) whose every call answers within
 * the deadline: after it, the callback gets a SessionStoreError and the
 * store's own late answer is ignored.
 */
export class DeadlineStore extends session.Store {
  private readonly inner: Store;

  constructor(inner: Store) {
    super();
    this.inner = inner;
  }

  override get(sid: string, callback: GetCallback): void {
    const done = once(callback);
    const timer = setTimeout(() => done(new SessionStoreError(new RedisDeadlineError())), REDIS_DEADLINE_MS);
    this.inner.get(sid, (err, data) => {
      clearTimeout(timer);
      done(err, data);
    });
  }

  override set(sid: string, data: SessionData, callback?: Callback): void {
    this.call(callback, (cb) => this.inner.set(sid, data, cb));
  }

  override touch(sid: string, data: SessionData, callback?: Callback): void {
    // Typed without an error argument, but connect-redis does pass one.
    const touch = this.inner.touch?.bind(this.inner) as ((sid: string, data: SessionData, cb: Callback) => void) | undefined;
    if (!touch) return callback?.();
    this.call(callback, (cb) => touch(sid, data, cb));
  }

  override destroy(sid: string, callback?: Callback): void {
    this.call(callback, (cb) => this.inner.destroy(sid, cb));
  }

  private call(callback: Callback | undefined, run: (cb: Callback) => void): void {
    const done = once(callback ?? (() => undefined));
    const timer = setTimeout(() => done(new SessionStoreError(new RedisDeadlineError())), REDIS_DEADLINE_MS);
    run((err?: unknown) => {
      clearTimeout(timer);
      done(err);
    });
  }
}

function once<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void {
  let called = false;
  return (...args) => {
    if (called) return;
    called = true;
    fn(...args);
  };
}
