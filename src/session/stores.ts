import session from 'express-session';
import { RedisStore } from 'connect-redis';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/types.ts';
import { RecordCipher } from './record-cipher.ts';
import { DeadlineStore } from './deadline-store.ts';
import { LocalInvalidationBus, RedisInvalidationBus, type InvalidationBus } from './invalidation.ts';
import { MemoryKeyValueStore, RedisKeyValueStore, type KeyValueStore } from '../store/kv.ts';
import { createRedisConnection } from '../store/redis-client.ts';
import { REDIS_NAMESPACE, SESSION_RECORD_PREFIX } from './keys.ts';
import { RedisSessionRecords, StoreSessionRecords } from './records.ts';
import { SessionRepository } from './repository.ts';

export interface Stores {
  sessions: SessionRepository;
  /** Also encrypts login transactions. */
  cipher: RecordCipher;
  kv: KeyValueStore;
  /** 'redis' or 'memory', for readiness and the start-up log. */
  kind: 'redis' | 'memory';
  /** True once the store's connection is up (always, for memory). */
  connected(): boolean;
  /** Tells every instance's session cache when a session changed. */
  invalidation: InvalidationBus;
  /** The Redis client's id, which its diagnostics channel events carry (command metrics). */
  redisClientId?: string;
  close(): Promise<void>;
}

/** Redis (single node, cluster or Sentinel) when configured, else memory for a single instance (with a warning saying so). */
export function createStores(config: GatewayConfig, logger: Logger): Stores {
  const cipher = new RecordCipher(config.sessionSecrets);
  const timeouts = { idleTimeoutSec: config.sessionIdleTimeoutSec, absoluteTimeoutSec: config.sessionAbsoluteTimeoutSec };
  if (config.redis) {
    const connection = createRedisConnection(config.redis, logger);
    const { client } = connection;
    const kv = new RedisKeyValueStore(client, REDIS_NAMESPACE);
    const records = new RedisSessionRecords(client, SESSION_RECORD_PREFIX, (key) => kv.redisKey(key));
    const sessions = new SessionRepository(new DeadlineStore(new RedisStore({ client: connection.native, prefix: SESSION_RECORD_PREFIX })), cipher, timeouts, records);
    const invalidation = new RedisInvalidationBus(client, connection.subscriber(), logger);
    sessions.onChange((storeId) => invalidation.publish(storeId));
    return {
      sessions,
      cipher,
      kv,
      kind: 'redis',
      connected: () => client.isReady,
      invalidation,
      ...(connection.clientId !== undefined ? { redisClientId: connection.clientId } : {}),
      close: async () => {
        await invalidation.close();
        await kv.close();
      },
    };
  }
  logger.warn("BFF_REDIS_URL is not set: sessions are kept in this process's memory. They are lost on restart and serve ONE instance only; set BFF_REDIS_URL before running more than one replica.");
  const memory = new session.MemoryStore();
  // The memory store only drops expired sessions when they are read; prune the rest.
  const pruner = setInterval(() => memory.all(() => undefined), 60_000);
  pruner.unref();
  const kv = new MemoryKeyValueStore();
  const sessions = new SessionRepository(memory, cipher, timeouts, new StoreSessionRecords(memory, kv));
  const invalidation = new LocalInvalidationBus();
  sessions.onChange((storeId) => invalidation.publish(storeId));
  return {
    sessions,
    cipher,
    kv,
    kind: 'memory',
    connected: () => true,
    invalidation,
    close: async () => {
      clearInterval(pruner);
      await kv.close();
    },
  };
}
