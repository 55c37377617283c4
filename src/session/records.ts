import { withDeadline } from '../store/deadline.ts';
import { SessionStoreError } from '../store/errors.ts';
import type { RedisByteReader, RedisClient } from '../store/redis-client.ts';

/** A lock whose owner alone may write: protects tokens from an instance whose lock expired mid-refresh. */
export interface LockFence {
  key: string;
  token: string;
}

export type ReplaceResult = 'ok' | 'gone' | 'lost-lock';

/**
 * Where session records live: opaque bytes (the repository seals and opens
 * them) under the record's id, each with an expiry the store enforces by
 * itself. Writes to an existing record never bring a destroyed session back:
 * `replace` and `expire` succeed only while the record exists (and `replace`
 * only while the writer still holds its lock), atomically. Failures reject
 * with a SessionStoreError.
 */
export interface SessionRecords {
  /** The record's bytes, or undefined when there is none. */
  get(recordId: string): Promise<Buffer | undefined>;
  /** Creates or overwrites a record (a new session, or express-session writing one a request changed). */
  set(recordId: string, value: Buffer, ttlMs: number): Promise<void>;
  /** Gives an existing record a new expiry (the idle timeout slides); a record that is gone stays gone. */
  expire(recordId: string, ttlMs: number): Promise<void>;
  replace(recordId: string, value: Buffer, ttlMs: number, fence?: LockFence): Promise<ReplaceResult>;
  /** How long the record has left before the store expires it (Infinity: no expiry), or undefined when it is gone. */
  remainingMs(recordId: string): Promise<number | undefined>;
  /** Deletes the record; true when there was one to delete (so that callers count the sessions they actually ended). */
  remove(recordId: string): Promise<boolean>;
}

const REPLACE = `
if ARGV[3] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[3] then return -1 end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;
// PTTL and PEXPIRE through scripts: the one command surface that works alike on a single node, a cluster and Sentinel.
const REMAINING = "return redis.call('PTTL', KEYS[1])";
const EXPIRE = "return redis.call('PEXPIRE', KEYS[1], ARGV[1])";
const REMOVE = "return redis.call('DEL', KEYS[1])";

/** Whole milliseconds, at least one: Redis refuses a zero or fractional PX. */
const px = (ttlMs: number): number => Math.max(1, Math.ceil(ttlMs));

/**
 * Redis: a record is a binary string value whose expiry is Redis's own (PX),
 * so nothing but the ciphertext is in the value. Every command is bounded by
 * the store deadline; a script checks the fence and the record's existence
 * and writes, so nothing can interleave.
 */
export class RedisSessionRecords implements SessionRecords {
  private readonly client: RedisClient;
  private readonly bytes: RedisByteReader;
  private readonly prefix: string;
  private readonly lockKey: (key: string) => string;

  /** `prefix` + record id is the Redis key; `lockKey` maps a fence's key to its Redis key. */
  constructor(client: RedisClient, bytes: RedisByteReader, prefix: string, lockKey: (key: string) => string) {
    this.client = client;
    this.bytes = bytes;
    this.prefix = prefix;
    this.lockKey = lockKey;
  }

  async get(recordId: string): Promise<Buffer | undefined> {
    const value = await command(this.bytes.get(this.prefix + recordId));
    return Buffer.isBuffer(value) ? value : undefined;
  }

  async set(recordId: string, value: Buffer, ttlMs: number): Promise<void> {
    await command(this.client.set(this.prefix + recordId, value, { expiration: { type: 'PX', value: px(ttlMs) } }));
  }

  async expire(recordId: string, ttlMs: number): Promise<void> {
    await command(this.client.eval(EXPIRE, { keys: [this.prefix + recordId], arguments: [String(px(ttlMs))] }));
  }

  async replace(recordId: string, value: Buffer, ttlMs: number, fence?: LockFence): Promise<ReplaceResult> {
    const key = this.prefix + recordId;
    const reply = await command(
      this.client.eval(REPLACE, {
        // The lock key shares the session key's hash tag, so the script stays on one Redis Cluster slot.
        keys: [key, fence ? this.lockKey(fence.key) : key],
        arguments: [value, String(px(ttlMs)), fence?.token ?? ''],
      }),
    );
    return reply === 1 ? 'ok' : reply === 0 ? 'gone' : 'lost-lock';
  }

  async remainingMs(recordId: string): Promise<number | undefined> {
    const ms = Number(await command(this.client.eval(REMAINING, { keys: [this.prefix + recordId], arguments: [] })));
    return ms === -2 ? undefined : ms === -1 ? Infinity : ms;
  }

  async remove(recordId: string): Promise<boolean> {
    return Number(await command(this.client.eval(REMOVE, { keys: [this.prefix + recordId], arguments: [] }))) === 1;
  }
}

async function command<T>(reply: Promise<T>): Promise<T> {
  try {
    return await withDeadline(reply);
  } catch (err) {
    throw new SessionStoreError(err);
  }
}
