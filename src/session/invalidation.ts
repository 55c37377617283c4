import type { Logger } from 'pino';
import type { RedisClient, RedisSubscriber } from '../store/redis-client.ts';
import { SESSION_INVALIDATION_CHANNEL as CHANNEL } from './keys.ts';

/** Sent to every subscriber when its own view may have missed messages: drop everything. */
export const INVALIDATE_ALL = '*';

/**
 * Tells every instance that a session changed or ended, so that in-process
 * caches of decrypted sessions drop it at once (a logout on one instance is
 * honoured on all of them).
 */
export interface InvalidationBus {
  publish(storeId: string): void;
  onInvalidate(handler: (storeId: string) => void): void;
  /** False while messages could be missed: caches must not be trusted then. */
  healthy(): boolean;
  close(): Promise<void>;
}

/** Redis pub/sub on a dedicated connection (a subscribed connection can issue no other commands). */
export class RedisInvalidationBus implements InvalidationBus {
  private readonly client: RedisClient;
  private readonly subscriber: RedisSubscriber;
  private readonly handlers: Array<(storeId: string) => void> = [];
  private subscribed = false;

  constructor(client: RedisClient, subscriber: RedisSubscriber, logger: Logger) {
    this.client = client;
    this.subscriber = subscriber;
    // While this connection is down, messages are lost: drop every cached session when it fails and again
    // when it is back (healthy() is false in between, so nothing is cached meanwhile).
    this.subscriber.on('error', () => this.emit(INVALIDATE_ALL));
    this.subscriber.on('ready', () => this.emit(INVALIDATE_ALL));
    this.subscriber
      .connect()
      .then(() => this.subscriber.subscribe(CHANNEL, (message: string) => this.emit(message)))
      .then(() => {
        // node-redis subscribes again by itself after every reconnect.
        this.subscribed = true;
      })
      .catch((err: unknown) => logger.warn({ reason: err instanceof Error ? err.message : 'error' }, 'session invalidation channel unavailable; session cache disabled'));
  }

  publish(storeId: string): void {
    // This instance at once; the others (and this one again, harmlessly) through Redis.
    this.emit(storeId);
    // Best effort: a lost message is bounded by the cache's short lifetime.
    this.client.publish(CHANNEL, storeId).catch(() => undefined);
  }

  onInvalidate(handler: (storeId: string) => void): void {
    this.handlers.push(handler);
  }

  healthy(): boolean {
    return this.subscribed && this.subscriber.isReady;
  }

  async close(): Promise<void> {
    this.subscribed = false;
    if (this.subscriber.isOpen) await this.subscriber.close();
  }

  private emit(storeId: string): void {
    for (const handler of this.handlers) handler(storeId);
  }
}

/** One process, one cache: nothing to tell anyone else. */
export class LocalInvalidationBus implements InvalidationBus {
  private readonly handlers: Array<(storeId: string) => void> = [];
  publish(storeId: string): void {
    for (const handler of this.handlers) handler(storeId);
  }
  onInvalidate(handler: (storeId: string) => void): void {
    this.handlers.push(handler);
  }
  healthy(): boolean {
    return true;
  }
  async close(): Promise<void> {}
}
