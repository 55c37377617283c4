import { createClient, createCluster, createSentinel, RESP_TYPES } from '@redis/client';
import type { Logger } from 'pino';
import type { RedisTopology } from '../config/types.ts';

/** Commands fail fast instead of queueing while Redis is away: a request must never hang on it. */
const COMMAND_TIMEOUT_MS = 1000;
const socket = {
  connectTimeout: 2000,
  reconnectStrategy: (retries: number) => Math.min(100 * 2 ** Math.min(retries, 5), 2000),
};

/** The commands the gateway uses, the same on a single node, a cluster and a Sentinel-managed master. */
export interface RedisCommands {
  set(key: string, value: string | Buffer, options?: { expiration?: { type: 'PX'; value: number }; condition?: 'NX' | 'XX' }): Promise<unknown>;
  get(key: string): Promise<unknown>;
  getDel(key: string): Promise<unknown>;
  del(key: string): Promise<number>;
  exists(key: string): Promise<number>;
  eval(script: string, options: { keys: string[]; arguments: Array<string | Buffer> }): Promise<unknown>;
  sMembers(key: string): Promise<unknown>;
  sRem(key: string, member: string): Promise<number>;
  publish(channel: string, message: string): Promise<number>;
  ping(): Promise<unknown>;
}

/** A connection's lifecycle, whatever the topology. */
export interface RedisLifecycle {
  connect(): Promise<unknown>;
  close(): Promise<void>;
  on(event: 'error' | 'ready', listener: (...args: unknown[]) => void): unknown;
  readonly isOpen: boolean;
  readonly isReady: boolean;
}

export interface RedisSubscriber extends RedisLifecycle {
  subscribe(channel: string, listener: (message: string) => void): Promise<void>;
}

export type RedisClient = RedisCommands & RedisLifecycle;

/**
 * Reads values as the bytes Redis holds. The client's own replies are UTF-8
 * strings, which would mangle a binary value (session records are bytes).
 * Shares the client's connection, command timeout and reconnection.
 */
export interface RedisByteReader {
  get(key: string): Promise<unknown>;
}

/** Replies of type blob string (GET's) as Buffers. */
const AS_BYTES = { [RESP_TYPES.BLOB_STRING]: Buffer };

export interface RedisConnection {
  client: RedisClient;
  bytes: RedisByteReader;
  /** A second connection of the same topology, for pub/sub (a subscribed connection can issue no other command). */
  subscriber(): RedisSubscriber;
  /** The single-node client's id, which its diagnostics channel events carry (command metrics). */
  clientId?: string;
}

function build(topology: RedisTopology) {
  switch (topology.kind) {
    case 'single':
      return createClient({ url: topology.url, disableOfflineQueue: true, commandOptions: { timeout: COMMAND_TIMEOUT_MS }, socket });
    case 'cluster':
      return createCluster({
        rootNodes: topology.nodes.map((url) => ({ url })),
        defaults: { disableOfflineQueue: true, socket },
        commandOptions: { timeout: COMMAND_TIMEOUT_MS },
      });
    case 'sentinel': {
      const credentials = { ...(topology.username ? { username: topology.username } : {}), ...(topology.password ? { password: topology.password } : {}) };
      return createSentinel({
        name: topology.name,
        sentinelRootNodes: topology.sentinels.map((node) => ({ ...node })),
        nodeClientOptions: { ...credentials, disableOfflineQueue: true, socket },
        sentinelClientOptions: { ...credentials, socket },
        commandOptions: { timeout: COMMAND_TIMEOUT_MS },
      });
    }
  }
}

/**
 * Creates the shared Redis connection (single node, cluster or Sentinel) and
 * starts connecting without waiting: the gateway starts while Redis is down,
 * answers 503 where it needs a session, and recovers by itself when Redis
 * returns.
 */
export function createRedisConnection(topology: RedisTopology, logger: Logger): RedisConnection {
  const native = build(topology);
  const client: RedisClient = native;
  let healthy = true;
  client.on('error', (err: unknown) => {
    // Reconnection errors repeat every retry; log the transition, not each one.
    if (healthy) logger.error({ err: { message: err instanceof Error ? err.message : String(err) }, topology: topology.kind }, 'redis connection lost; retrying in the background');
    healthy = false;
  });
  client.on('ready', () => {
    if (!healthy) logger.info({ topology: topology.kind }, 'redis connection restored');
    healthy = true;
  });
  client.connect().catch(() => {
    // The error listener above reports it; the reconnect strategy keeps trying.
  });
  return {
    client,
    bytes: native.withTypeMapping(AS_BYTES),
    subscriber: () => build(topology),
    ...('_clientId' in native && typeof native._clientId === 'string' ? { clientId: native._clientId } : {}),
  };
}

/** A single-node client, for tools and tests that talk to one Redis. */
export function createRedisClient(url: string, logger: Logger): RedisClient {
  return createRedisConnection({ kind: 'single', url }, logger).client;
}
