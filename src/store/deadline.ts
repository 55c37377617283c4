import { StoreUnavailableError } from './errors.ts';

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

/** The command's result, or a StoreUnavailableError once the deadline passes. A late reply is dropped. */
export function withDeadline<T>(command: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreUnavailableError(new RedisDeadlineError())), REDIS_DEADLINE_MS);
  });
  return Promise.race([command, late]).finally(() => clearTimeout(timer));
}
