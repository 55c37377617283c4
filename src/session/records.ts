import type { SessionData, Store } from 'express-session';
import { withDeadline } from '../store/deadline.ts';
import { forSession, SessionStoreError } from '../store/errors.ts';
import type { KeyValueStore } from '../store/kv.ts';
import type { RedisClient } from '../store/redis-client.ts';

/** A lock whose owner alone may write: protects tokens from an instance whose lock expired mid-refresh. */
export interface LockFence {
  key: string;
  token: string;
}

export type ReplaceResult = 'ok' | 'gone' | 'lost-lock';

/**
 * Writes to an existing session record that must never bring a destroyed
 * session back: a replace succeeds only while the record exists (and while
 * the writer still holds its lock), atomically.
 */
export interface SessionRecords {
  replace(innerId: string, value: object, ttlMs: number, fence?: LockFence): Promise<ReplaceResult>;
  /** How long the record has left before the store expires it (Infinity: no expiry), or undefined when it is gone. */
  remainingMs(innerId: string): Promise<number | undefined>;
  /** Deletes the record; true when there was one to delete (so that callers count the sessions they actually ended). */
  remove(innerId: string): Promise<boolean>;
}

const REPLACE = `
if ARGV[3] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[3] then return -1 end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;
// PTTL through a script: the one command surface that works alike on a single node, a cluster and Sentinel.
const REMAINING = "return redis.call('PTTL', KEYS[1])";
const REMOVE = "return redis.call('DEL', KEYS[1])";

/** Redis: one script checks the fence and the record's existence and writes, so nothing can interleave. */
export class RedisSessionRecords implements SessionRecords {
  private readonly client: RedisClient;
  private readonly sessionPrefix: string;
  private readonly lockKey: (key: string) => string;

  constructor(client: RedisClient, sessionPrefix: string, lockKey: (key: string) => string) {
    this.client = client;
    this.sessionPrefix = sessionPrefix;
    this.lockKey = lockKey;
  }

  async replace(innerId: string, value: object, ttlMs: number, fence?: LockFence): Promise<ReplaceResult> {
    const sessionKey = this.sessionPrefix + innerId;
    let reply: unknown;
    try {
      reply = await withDeadline(
        this.client.eval(REPLACE, {
          // The lock key shares the session key's hash tag, so the script stays on one Redis Cluster slot.
          keys: [sessionKey, fence ? this.lockKey(fence.key) : sessionKey],
          arguments: [JSON.stringify(value), String(Math.max(1, Math.ceil(ttlMs))), fence?.token ?? ''],
        }),
      );
    } catch (err) {
      throw new SessionStoreError(err);
    }
    return reply === 1 ? 'ok' : reply === 0 ? 'gone' : 'lost-lock';
  }

  async remainingMs(innerId: string): Promise<number | undefined> {
    let reply: unknown;
    try {
      reply = await withDeadline(this.client.eval(REMAINING, { keys: [this.sessionPrefix + innerId], arguments: [] }));
    } catch (err) {
      throw new SessionStoreError(err);
    }
    const ms = Number(reply);
    return ms === -2 ? undefined : ms === -1 ? Infinity : ms;
  }

  async remove(innerId: string): Promise<boolean> {
    let reply: unknown;
    try {
      reply = await withDeadline(this.client.eval(REMOVE, { keys: [this.sessionPrefix + innerId], arguments: [] }));
    } catch (err) {
      throw new SessionStoreError(err);
    }
    return Number(reply) === 1;
  }
}

/** Any express-session store in one process (the memory store): check and write happen without yielding to other requests' writes. */
export class StoreSessionRecords implements SessionRecords {
  private readonly inner: Store;
  private readonly kv: KeyValueStore | undefined;

  constructor(inner: Store, kv?: KeyValueStore) {
    this.inner = inner;
    this.kv = kv;
  }

  async replace(innerId: string, value: object, _ttlMs: number, fence?: LockFence): Promise<ReplaceResult> {
    if (fence && this.kv && !(await forSession(this.kv.holdsLock(fence.key, fence.token)))) return 'lost-lock';
    const existing = await new Promise<SessionData | null | undefined>((resolve, reject) => this.inner.get(innerId, (err, data) => (err ? reject(new SessionStoreError(err)) : resolve(data))));
    if (!existing) return 'gone';
    await new Promise<void>((resolve, reject) => this.inner.set(innerId, value as SessionData, (err?: unknown) => (err ? reject(new SessionStoreError(err)) : resolve())));
    return 'ok';
  }

  /** The memory store keeps each record's expiry in the record, and updates it on touch. */
  async remainingMs(innerId: string): Promise<number | undefined> {
    const existing = await new Promise<SessionData | null | undefined>((resolve, reject) => this.inner.get(innerId, (err, data) => (err ? reject(new SessionStoreError(err)) : resolve(data))));
    if (!existing) return undefined;
    const expires = existing.cookie?.expires;
    return expires ? Date.parse(String(expires)) - Date.now() : Infinity;
  }

  /** One process: nothing can come between the read and the delete. */
  async remove(innerId: string): Promise<boolean> {
    const existing = await new Promise<SessionData | null | undefined>((resolve, reject) => this.inner.get(innerId, (err, data) => (err ? reject(new SessionStoreError(err)) : resolve(data))));
    await new Promise<void>((resolve, reject) => this.inner.destroy(innerId, (err?: unknown) => (err ? reject(new SessionStoreError(err)) : resolve())));
    return Boolean(existing);
  }
}
