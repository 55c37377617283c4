import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/types.ts';
import { RecordCipher } from './record-cipher.ts';
import { LocalInvalidationBus, RedisInvalidationBus, type InvalidationBus } from './invalidation.ts';
import { MemoryKeyValueStore, RedisKeyValueStore, type KeyValueStore } from '../store/kv.ts';
import { createRedisConnection } from '../store/redis-client.ts';
import { REDIS_NAMESPACE, SESSION_RECORD_PREFIX } from './keys.ts';
import { MemorySessionRecords } from './memory-records.ts';
import { RedisSessionRecords } from './records.ts';
import { SessionRepository, type SessionRepositoryOptions } from './repository.ts';

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
  const options: SessionRepositoryOptions = {
    idleTimeoutSec: config.sessionIdleTimeoutSec,
    absoluteTimeoutSec: config.sessionAbsoluteTimeoutSec,
    onUnreadable: (reason) => logger.warn({ reason }, 'a session record decrypted but could not be read; its user is treated as signed out'),
  };
  if (config.redis) {
    const connection = createRedisConnection(config.redis, logger);
    const { client } = connection;
    const kv = new RedisKeyValueStore(client, REDIS_NAMESPACE);
    const records = new RedisSessionRecords(client, connection.bytes, SESSION_RECORD_PREFIX, (key) => kv.redisKey(key));
    const sessions = new SessionRepository(records, cipher, options);
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
  const kv = new MemoryKeyValueStore();
  const records = new MemorySessionRecords(kv);
  const sessions = new SessionRepository(records, cipher, options);
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
      records.close();
      await kv.close();
    },
  };
}
