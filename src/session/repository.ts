import type { SessionData, Store } from 'express-session';
import type { RecordCipher } from './record-cipher.ts';
import { SessionStoreError } from '../store/errors.ts';
import { parseHandle } from './handles.ts';
import type { UserSession } from './types.ts';
import { sessionRecordId } from './keys.ts';
import { StoreSessionRecords, type LockFence, type ReplaceResult, type SessionRecords } from './records.ts';

/** What the inner store holds: plaintext expiry (so it can expire the record) and the ciphertext. */
interface Envelope {
  cookie: { expires: string; originalMaxAge: number };
  data: string;
}

/**
 * An express-session store (connect-redis, the memory store) as the
 * repository uses it: it is given envelopes, not express-session's
 * SessionData, and nothing it returns is trusted to be an envelope. Any
 * express-session Store is one (its methods accept any object).
 */
interface RecordStore {
  get(id: string, callback: (err: unknown, record?: unknown) => void): void;
  set(id: string, record: object, callback?: (err?: unknown) => void): void;
  // connect-redis passes an error to touch's callback, though express-session's type has none.
  touch?(id: string, record: object, callback?: (err?: unknown) => void): void;
  destroy(id: string, callback?: (err?: unknown) => void): void;
}

const isEnvelope = (record: unknown): record is Envelope => typeof record === 'object' && record !== null && typeof (record as { data?: unknown }).data === 'string';

export interface SessionRepositoryOptions {
  idleTimeoutSec: number;
  absoluteTimeoutSec: number;
  now?: () => number;
}

/** Told whenever a session is written or destroyed, so that caches of it anywhere can drop it. */
export type SessionChangeListener = (storeId: string) => void;

/**
 * The one way to sessions, for every path: express-session on `/auth`
 * (through ExpressSessionStore), the reader on `/api` and WebSockets, the
 * refresher and logout. A session is named by its handle (the id the cookie
 * carries: store id + session key) or, to end it, by its store id alone.
 *
 * Every session is encrypted: the inner store (connect-redis or the memory
 * store) never sees the session key half of the handle, so a dump of it
 * decrypts nothing. The repository also owns the record's expiry: idle
 * timeout, capped by the session's absolute deadline.
 */
export class SessionRepository {
  private readonly inner: RecordStore;
  private readonly cipher: RecordCipher;
  private readonly options: Required<SessionRepositoryOptions>;
  private readonly records: SessionRecords;
  private changed: SessionChangeListener = () => undefined;

  constructor(inner: Store, cipher: RecordCipher, options: SessionRepositoryOptions, records?: SessionRecords) {
    this.inner = inner;
    this.cipher = cipher;
    this.options = { now: Date.now, ...options };
    this.records = records ?? new StoreSessionRecords(inner);
  }

  onChange(listener: SessionChangeListener): void {
    this.changed = listener;
  }

  /** The session, or undefined when there is none, it cannot be decrypted, or its absolute deadline passed. Rejects when the store fails. */
  load(handle: string): Promise<SessionData | undefined> {
    const parts = parseHandle(handle);
    if (!parts) return Promise.resolve(undefined);
    const innerId = sessionRecordId(parts.storeId);
    return new Promise((resolve, reject) => {
      this.inner.get(innerId, (err, stored) => {
        if (err) return reject(new SessionStoreError(err));
        if (!isEnvelope(stored)) return resolve(undefined);
        const plaintext = this.cipher.decrypt(stored.data, parts.recordKey, innerId);
        if (plaintext === undefined) return resolve(undefined);
        let data: SessionData;
        try {
          data = JSON.parse(plaintext) as SessionData;
        } catch {
          return resolve(undefined);
        }
        if (data.user) upgradeUserSession(data.user);
        if (data.user && data.user.absoluteExpiresAt <= this.options.now()) {
          this.inner.destroy(innerId, () => resolve(undefined));
          return;
        }
        resolve(data);
      });
    });
  }

  /** Creates or overwrites a session (express-session's `set`: a new session, or one a request changed). */
  save(handle: string, data: SessionData): Promise<void> {
    const parts = parseHandle(handle);
    if (!parts) return Promise.reject(new Error('malformed session id'));
    const innerId = sessionRecordId(parts.storeId);
    return new Promise((resolve, reject) => {
      this.inner.set(innerId, this.seal(data, parts.recordKey, innerId), (err) => {
        this.changed(parts.storeId);
        if (err) reject(new SessionStoreError(err));
        else resolve();
      });
    });
  }

  /** Slides the idle timeout: the session was used and not changed. */
  touch(handle: string, data: SessionData): Promise<void> {
    const parts = parseHandle(handle);
    const inner = this.inner;
    if (!parts || !inner.touch) return Promise.resolve();
    const expiry = { cookie: this.expiry(data) };
    return new Promise((resolve, reject) => inner.touch?.(sessionRecordId(parts.storeId), expiry, (err) => (err ? reject(new SessionStoreError(err)) : resolve())));
  }

  /**
   * Ends a session knowing only its store id (back-channel logout finds
   * sessions that way). Resolves to true when there was a record to delete,
   * false when the session had already ended.
   */
  async destroy(storeId: string): Promise<boolean> {
    // Told before the store answers too: a cache must not keep serving a session whose logout is under way.
    this.changed(storeId);
    try {
      return await this.records.remove(sessionRecordId(storeId));
    } finally {
      this.changed(storeId);
    }
  }

  /**
   * Until when the session lives if nothing touches it again (epoch ms): the
   * record's expiry in the store, capped by the absolute deadline. Undefined
   * once it has ended. Read from the store itself, never from a cache.
   */
  async liveUntil(handle: string): Promise<number | undefined> {
    const parts = parseHandle(handle);
    if (!parts) return undefined;
    const data = await this.load(handle);
    if (!data) return undefined;
    const remaining = await this.records.remainingMs(sessionRecordId(parts.storeId));
    if (remaining === undefined) return undefined;
    return Math.min(this.options.now() + remaining, data.user?.absoluteExpiresAt ?? Infinity);
  }

  /**
   * Rewrites an existing session (under the active secret, so that rotation
   * re-encrypts sessions as they are used). Never recreates a destroyed one;
   * with a fence, writes only while the caller still owns that lock.
   */
  replace(handle: string, data: SessionData, fence?: LockFence): Promise<ReplaceResult> {
    const parts = parseHandle(handle);
    if (!parts) return Promise.resolve('gone');
    const innerId = sessionRecordId(parts.storeId);
    const envelope = this.seal(data, parts.recordKey, innerId);
    return this.records.replace(innerId, envelope, Date.parse(envelope.cookie.expires) - this.options.now(), fence).finally(() => this.changed(parts.storeId));
  }

  private seal(data: SessionData, recordKey: Buffer, innerId: string): Envelope {
    return { cookie: this.expiry(data), data: this.cipher.encrypt(JSON.stringify(data), recordKey, innerId) };
  }

  private expiry(data: SessionData): Envelope['cookie'] {
    const now = this.options.now();
    const idleEnd = now + this.options.idleTimeoutSec * 1000;
    const absoluteEnd = data.user?.absoluteExpiresAt ?? now + this.options.absoluteTimeoutSec * 1000;
    const end = Math.max(now + 1000, Math.min(idleEnd, absoluteEnd));
    return { expires: new Date(end).toISOString(), originalMaxAge: end - now };
  }
}

/**
 * Sessions written before the logout nonce got its name hold it as `logoutSid`; without this their
 * `/auth/logout?sid=` link would stop matching after an upgrade. Drop once no such session can be
 * alive (the absolute timeout after the release that renamed it).
 */
function upgradeUserSession(user: UserSession & { logoutSid?: unknown }): void {
  if (user.logoutNonce === undefined && typeof user.logoutSid === 'string') user.logoutNonce = user.logoutSid;
  delete user.logoutSid;
}
