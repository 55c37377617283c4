import { randomBytes } from 'node:crypto';
import type { RedisClient } from './redis-client.ts';
import { withDeadline } from './deadline.ts';
import { StoreUnavailableError } from './errors.ts';

/**
 * The key-value surface the gateway needs besides the session records: login
 * transactions, refresh locks, the logout-token replay cache and the
 * sid/sub → session index, over Redis (shared by every instance) or memory.
 */
export interface KeyValueStore {
  set(key: string, value: string, ttlMs: number): Promise<void>;
  /** Sets only when the key does not exist; false when it did (a replay). */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>;
  /** Reads and deletes in one step, so a value can be used exactly once. */
  take(key: string): Promise<string | undefined>;
  delete(...keys: string[]): Promise<void>;
  /** A lock that expires by itself; returns the owner's token, or undefined when someone else holds it. */
  acquireLock(key: string, ttlMs: number): Promise<string | undefined>;
  /** Releases the lock only if `token` still owns it. */
  releaseLock(key: string, token: string): Promise<void>;
  /** True while the lock is held by anyone. */
  isLocked(key: string): Promise<boolean>;
  /** True while `token` owns the lock. */
  holdsLock(key: string, token: string): Promise<boolean>;
  /** Adds to a set whose expiry is extended to at least `ttlMs`. */
  addToSet(key: string, member: string, ttlMs: number): Promise<void>;
  members(key: string): Promise<string[]>;
  removeFromSet(key: string, member: string): Promise<void>;
  /** Adds one to a counter and returns the count; the first increment starts the counter's `ttlMs` life, so counters never pile up. */
  increment(key: string, ttlMs: number): Promise<number>;
  get(key: string): Promise<string | undefined>;
  /** Resolves when the store answers. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

const RELEASE_LOCK = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";
// One script, one key: atomic, and on a Redis Cluster it runs on the key's own node.
const INCREMENT = "local n = redis.call('INCR', KEYS[1]) if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return n";
const ADD_TO_SET = "redis.call('SADD', KEYS[1], ARGV[1]) if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 1";

export class RedisKeyValueStore implements KeyValueStore {
  private readonly client: RedisClient;
  private readonly prefix: string;
  /** `prefix` namespaces every key; the gateway's is session/keys.ts's REDIS_NAMESPACE, which also names the session records. */
  constructor(client: RedisClient, prefix: string) {
    this.client = client;
    this.prefix = prefix;
  }
  async set(key: string, value: string, ttlMs: number): Promise<void> {
    await guard(this.client.set(this.prefix + key, value, { expiration: { type: 'PX', value: ttlMs } }));
  }
  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    const reply = await guard(this.client.set(this.prefix + key, value, { condition: 'NX', expiration: { type: 'PX', value: ttlMs } }));
    return reply === 'OK';
  }
  async take(key: string): Promise<string | undefined> {
    const value = await guard(this.client.getDel(this.prefix + key));
    return typeof value === 'string' ? value : undefined;
  }
  async delete(...keys: string[]): Promise<void> {
    if (keys.length > 0) await guard(Promise.all(keys.map((k) => this.client.del(this.prefix + k))));
  }
  async acquireLock(key: string, ttlMs: number): Promise<string | undefined> {
    const token = randomBytes(16).toString('base64url');
    return (await this.setIfAbsent(key, token, ttlMs)) ? token : undefined;
  }
  async releaseLock(key: string, token: string): Promise<void> {
    await guard(this.client.eval(RELEASE_LOCK, { keys: [this.prefix + key], arguments: [token] }));
  }
  async isLocked(key: string): Promise<boolean> {
    return (await guard(this.client.exists(this.prefix + key))) === 1;
  }
  async holdsLock(key: string, token: string): Promise<boolean> {
    return (await guard(this.client.get(this.prefix + key))) === token;
  }
  /** The full Redis key, for scripts that touch a lock and another key atomically. */
  redisKey(key: string): string {
    return this.prefix + key;
  }
  async addToSet(key: string, member: string, ttlMs: number): Promise<void> {
    await guard(this.client.eval(ADD_TO_SET, { keys: [this.prefix + key], arguments: [member, String(Math.ceil(ttlMs))] }));
  }
  async members(key: string): Promise<string[]> {
    const members = await guard(this.client.sMembers(this.prefix + key));
    return Array.isArray(members) ? members.filter((m): m is string => typeof m === 'string') : [];
  }
  async removeFromSet(key: string, member: string): Promise<void> {
    await guard(this.client.sRem(this.prefix + key, member));
  }
  async increment(key: string, ttlMs: number): Promise<number> {
    return Number(await guard(this.client.eval(INCREMENT, { keys: [this.prefix + key], arguments: [String(Math.ceil(ttlMs))] })));
  }
  async get(key: string): Promise<string | undefined> {
    const value = await guard(this.client.get(this.prefix + key));
    return typeof value === 'string' ? value : undefined;
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
    return await withDeadline(command);
  } catch (err) {
    throw err instanceof StoreUnavailableError ? err : new StoreUnavailableError(err);
  }
}

interface MemoryEntry {
  value: string | Set<string>;
  expiresAt: number;
}

/** Single-instance store for development and the demo; expired entries are swept every minute. */
export class MemoryKeyValueStore implements KeyValueStore {
  private readonly entries = new Map<string, MemoryEntry>();
  private readonly sweeper: NodeJS.Timeout;
  constructor() {
    this.sweeper = setInterval(() => this.sweep(), 60_000);
    this.sweeper.unref();
  }
  async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.entries.set(key, { value, expiresAt: Date.now() + ttlMs });
  }
  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    if (this.live(key)) return false;
    this.entries.set(key, { value, expiresAt: Date.now() + ttlMs });
    return true;
  }
  async take(key: string): Promise<string | undefined> {
    const entry = this.live(key);
    this.entries.delete(key);
    return typeof entry?.value === 'string' ? entry.value : undefined;
  }
  async delete(...keys: string[]): Promise<void> {
    for (const key of keys) this.entries.delete(key);
  }
  async acquireLock(key: string, ttlMs: number): Promise<string | undefined> {
    const token = randomBytes(16).toString('base64url');
    return (await this.setIfAbsent(key, token, ttlMs)) ? token : undefined;
  }
  async releaseLock(key: string, token: string): Promise<void> {
    if (this.live(key)?.value === token) this.entries.delete(key);
  }
  async isLocked(key: string): Promise<boolean> {
    return this.live(key) !== undefined;
  }
  async holdsLock(key: string, token: string): Promise<boolean> {
    return this.live(key)?.value === token;
  }
  async addToSet(key: string, member: string, ttlMs: number): Promise<void> {
    const entry = this.live(key);
    const set = entry && entry.value instanceof Set ? entry.value : new Set<string>();
    set.add(member);
    this.entries.set(key, { value: set, expiresAt: Math.max(entry?.expiresAt ?? 0, Date.now() + ttlMs) });
  }
  async members(key: string): Promise<string[]> {
    const value = this.live(key)?.value;
    return value instanceof Set ? [...value] : [];
  }
  async removeFromSet(key: string, member: string): Promise<void> {
    const value = this.live(key)?.value;
    if (value instanceof Set) value.delete(member);
  }
  async increment(key: string, ttlMs: number): Promise<number> {
    const entry = this.live(key);
    const count = (typeof entry?.value === 'string' ? Number(entry.value) || 0 : 0) + 1;
    this.entries.set(key, { value: String(count), expiresAt: entry?.expiresAt ?? Date.now() + ttlMs });
    return count;
  }
  async get(key: string): Promise<string | undefined> {
    const value = this.live(key)?.value;
    return typeof value === 'string' ? value : undefined;
  }
  async ping(): Promise<void> {}
  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.entries.clear();
  }
  private live(key: string): MemoryEntry | undefined {
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }
  private sweep(): void {
    const now = Date.now();
    for (const [key, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(key);
  }
}
