import session from 'express-session';
import type { SessionData, Store } from 'express-session';
import type { SessionCipher } from './crypto.ts';
import { SessionStoreError } from '../store/errors.ts';
import { splitSessionId } from './ids.ts';
import { StoreSessionRecords, type LockFence, type ReplaceResult, type SessionRecords } from './records.ts';

type Callback = (err?: unknown) => void;
type GetCallback = (err: unknown, session?: SessionData | null) => void;

/** What the inner store holds: plaintext expiry (so it can expire the record) and the ciphertext. */
interface Envelope {
  cookie: { expires: string; originalMaxAge: number };
  data: string;
}

export interface EncryptedStoreOptions {
  idleTimeoutSec: number;
  absoluteTimeoutSec: number;
  now?: () => number;
}

/** Told whenever a session is written or destroyed, so that caches of it anywhere can drop it. */
export type SessionChangeListener = (storeId: string) => void;

/**
 * The record's name in the inner store. The braces are a Redis Cluster hash
 * tag: the session and its refresh lock (`lock:{id}`) live on one slot, so a
 * script can check the lock and write the session atomically.
 */
export const innerIdOf = (storeId: string): string => `{${storeId}}`;
export const refreshLockKey = (storeId: string): string => `lock:{${storeId}}`;

/**
 * Wraps an express-session store (connect-redis or the memory store) and
 * encrypts every session. The inner store never sees the session key half of
 * the id, so a dump of it decrypts nothing. It also owns the record's expiry:
 * idle timeout, capped by the session's absolute deadline.
 */
export class EncryptedStore extends session.Store {
  private readonly inner: Store;
  private readonly cipher: SessionCipher;
  private readonly options: Required<EncryptedStoreOptions>;
  private readonly records: SessionRecords;
  private changed: SessionChangeListener = () => undefined;

  constructor(inner: Store, cipher: SessionCipher, options: EncryptedStoreOptions, records?: SessionRecords) {
    super();
    this.inner = inner;
    this.cipher = cipher;
    this.options = { now: Date.now, ...options };
    this.records = records ?? new StoreSessionRecords(inner);
  }

  onChange(listener: SessionChangeListener): void {
    this.changed = listener;
  }

  override get(sid: string, callback: GetCallback): void {
    const parts = splitSessionId(sid);
    if (!parts) return callback(null, null);
    const innerId = innerIdOf(parts.storeId);
    this.inner.get(innerId, (err, stored) => {
      if (err) return callback(new SessionStoreError(err));
      const envelope = stored as unknown as Envelope | null | undefined;
      if (!envelope || typeof envelope.data !== 'string') return callback(null, null);
      const plaintext = this.cipher.decrypt(envelope.data, parts.sessionKey, innerId);
      if (plaintext === undefined) return callback(null, null);
      let data: SessionData;
      try {
        data = JSON.parse(plaintext) as SessionData;
      } catch {
        return callback(null, null);
      }
      if (data.user && data.user.absoluteExpiresAt <= this.options.now()) {
        this.inner.destroy(innerId, () => callback(null, null));
        return;
      }
      callback(null, data);
    });
  }

  override set(sid: string, data: SessionData, callback?: Callback): void {
    const parts = splitSessionId(sid);
    if (!parts) return callback?.(new Error('malformed session id'));
    const innerId = innerIdOf(parts.storeId);
    this.inner.set(innerId, this.seal(data, parts.sessionKey, innerId) as unknown as SessionData, (err) => {
      this.changed(parts.storeId);
      callback?.(err ? new SessionStoreError(err) : undefined);
    });
  }

  /** Slides the idle timeout; express-session calls it on requests that did not change the session. */
  override touch(sid: string, data: SessionData, callback?: Callback): void {
    const parts = splitSessionId(sid);
    if (!parts || !this.inner.touch) return callback?.();
    const envelope = { cookie: this.expiry(data) } as unknown as SessionData;
    // Typed without an error argument, but connect-redis does pass one.
    const touch = this.inner.touch.bind(this.inner) as (sid: string, sess: SessionData, cb: Callback) => void;
    touch(innerIdOf(parts.storeId), envelope, (err) => callback?.(err ? new SessionStoreError(err) : undefined));
  }

  override destroy(sid: string, callback?: Callback): void {
    const parts = splitSessionId(sid);
    if (!parts) return callback?.();
    void this.destroyStoreId(parts.storeId).then(() => callback?.(), callback);
  }

  /**
   * Ends a session knowing only its store id (back-channel logout finds
   * sessions that way). Resolves to true when there was a record to delete,
   * false when the session had already ended.
   */
  async destroyStoreId(storeId: string): Promise<boolean> {
    // Told before the store answers too: a cache must not keep serving a session whose logout is under way.
    this.changed(storeId);
    try {
      return await this.records.remove(innerIdOf(storeId));
    } finally {
      this.changed(storeId);
    }
  }

  /**
   * Until when the session lives if nothing touches it again (epoch ms): the
   * record's expiry in the store, capped by the absolute deadline. Undefined
   * once it has ended. Read from the store itself, never from a cache.
   */
  async liveUntil(sid: string): Promise<number | undefined> {
    const parts = splitSessionId(sid);
    if (!parts) return undefined;
    const data = await this.read(sid);
    if (!data) return undefined;
    const remaining = await this.records.remainingMs(innerIdOf(parts.storeId));
    if (remaining === undefined) return undefined;
    return Math.min(this.options.now() + remaining, data.user?.absoluteExpiresAt ?? Infinity);
  }

  read(sid: string): Promise<SessionData | undefined> {
    return new Promise((resolve, reject) => this.get(sid, (err, data) => (err ? reject(err) : resolve(data ?? undefined))));
  }

  /**
   * Rewrites an existing session (under the active secret, so that rotation
   * re-encrypts sessions as they are used). Never recreates a destroyed one;
   * with a fence, writes only while the caller still owns that lock.
   */
  replace(sid: string, data: SessionData, fence?: LockFence): Promise<ReplaceResult> {
    const parts = splitSessionId(sid);
    if (!parts) return Promise.resolve('gone');
    const innerId = innerIdOf(parts.storeId);
    const envelope = this.seal(data, parts.sessionKey, innerId);
    return this.records.replace(innerId, envelope, Date.parse(envelope.cookie.expires) - this.options.now(), fence).finally(() => this.changed(parts.storeId));
  }

  private seal(data: SessionData, sessionKey: Buffer, innerId: string): Envelope {
    return { cookie: this.expiry(data), data: this.cipher.encrypt(JSON.stringify(data), sessionKey, innerId) };
  }

  private expiry(data: SessionData): Envelope['cookie'] {
    const now = this.options.now();
    const idleEnd = now + this.options.idleTimeoutSec * 1000;
    const absoluteEnd = data.user?.absoluteExpiresAt ?? now + this.options.absoluteTimeoutSec * 1000;
    const end = Math.max(now + 1000, Math.min(idleEnd, absoluteEnd));
    return { expires: new Date(end).toISOString(), originalMaxAge: end - now };
  }
}
