import type { RedisClient } from './redis-client.ts';
import { SessionStoreError } from './errors.ts';

/**
 * The small key-value surface the gateway needs besides sessions (login
 * transactions now; locks and replay caches later), over Redis or memory.
 */
export interface KeyValueStore {
  set(key: string, value: string, ttlMs: number): Promise<void>;
  /** Reads and deletes in one step, so a value can be used exactly once. */
  take(key: string): Promise<string | undefined>;
  delete(key: string): Promise<void>;
  /** Resolves when the store answers. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export class RedisKeyValueStore implements KeyValueStore {
  private readonly client: RedisClient;
  private readonly prefix: string;
  constructor(client: RedisClient, prefix = 'bff:') {
    this.client = client;
    this.prefix = prefix;
  }
  async set(key: string, value: string, ttlMs: number): Promise<void> {
    await guard(this.client.set(this.prefix + key, value, { expiration: { type: 'PX', value: ttlMs } }));
  }
  async take(key: string): Promise<string | undefined> {
    const value = await guard(this.client.getDel(this.prefix + key));
    return value ?? undefined;
  }
  async delete(key: string): Promise<void> {
    await guard(this.client.del(this.prefix + key));
  }
  async ping(): Promise<void> {
    await guard(this.client.ping());
  }
  async close(): Promise<void> {
    if (this.client.isOpen) await this.client.close();
  }
}

async function guard<T>(command: Promise<T>): Promise<T> {
  try {
    return await command;
  } catch (err) {
    throw new SessionStoreError(err);
  }
}

/** Single-instance store for development and the demo; expired entries are swept every minute. */
export class MemoryKeyValueStore implements KeyValueStore {
  private readonly entries = new Map<string, { value: string; expiresAt: number }>();
  private readonly sweeper: NodeJS.Timeout;
  constructor() {
    this.sweeper = setInterval(() => this.sweep(), 60_000);
    this.sweeper.unref();
  }
  async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.entries.set(key, { value, expiresAt: Date.now() + ttlMs });
  }
  async take(key: string): Promise<string | undefined> {
    const entry = this.entries.get(key);
    this.entries.delete(key);
    return entry && entry.expiresAt > Date.now() ? entry.value : undefined;
  }
  async delete(key: string): Promise<void> {
    this.entries.delete(key);
  }
  async ping(): Promise<void> {}
  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.entries.clear();
  }
  private sweep(): void {
    const now = Date.now();
    for (const [key, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(key);
  }
}
