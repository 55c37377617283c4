import session from 'express-session';
import type { SessionData, Store } from 'express-session';
import { SessionStoreError } from './errors.ts';

/**
 * How long any Redis command may take before the request that needs it is
 * answered 503. node-redis's own command timeout only covers the wait
 * before a command is written: once it is on the wire, a Redis that stops
 * answering (frozen, or a network partition that sends no reset) would hold
 * the request until TCP gives up, many minutes later.
 */
export const REDIS_DEADLINE_MS = 1000;

export class RedisDeadlineError extends Error {
  readonly code = 'redis_deadline_exceeded';
  constructor() {
    super(`Redis did not answer within ${REDIS_DEADLINE_MS} ms`);
  }
}

/** The command's result, or a SessionStoreError once the deadline passes. A late reply is dropped. */
export function withDeadline<T>(command: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new SessionStoreError(new RedisDeadlineError())), REDIS_DEADLINE_MS);
  });
  return Promise.race([command, late]).finally(() => clearTimeout(timer));
}

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
