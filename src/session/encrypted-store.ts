import session from 'express-session';
import type { SessionData, Store } from 'express-session';
import type { SessionCipher } from './crypto.ts';
import { SessionStoreError } from './errors.ts';
import { splitSessionId } from './ids.ts';

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

  constructor(inner: Store, cipher: SessionCipher, options: EncryptedStoreOptions) {
    super();
    this.inner = inner;
    this.cipher = cipher;
    this.options = { now: Date.now, ...options };
  }

  override get(sid: string, callback: GetCallback): void {
    const parts = splitSessionId(sid);
    if (!parts) return callback(null, null);
    this.inner.get(parts.storeId, (err, stored) => {
      if (err) return callback(new SessionStoreError(err));
      const envelope = stored as unknown as Envelope | null | undefined;
      if (!envelope || typeof envelope.data !== 'string') return callback(null, null);
      const plaintext = this.cipher.decrypt(envelope.data, parts.sessionKey, parts.storeId);
      if (plaintext === undefined) return callback(null, null);
      let data: SessionData;
      try {
        data = JSON.parse(plaintext) as SessionData;
      } catch {
        return callback(null, null);
      }
      if (data.user && data.user.absoluteExpiresAt <= this.options.now()) {
        this.inner.destroy(parts.storeId, () => callback(null, null));
        return;
      }
      callback(null, data);
    });
  }

  override set(sid: string, data: SessionData, callback?: Callback): void {
    const parts = splitSessionId(sid);
    if (!parts) return callback?.(new Error('malformed session id'));
    const envelope: Envelope = {
      cookie: this.expiry(data),
      data: this.cipher.encrypt(JSON.stringify(data), parts.sessionKey, parts.storeId),
    };
    this.inner.set(parts.storeId, envelope as unknown as SessionData, (err) => callback?.(err ? new SessionStoreError(err) : undefined));
  }

  /** Slides the idle timeout; express-session calls it on requests that did not change the session. */
  override touch(sid: string, data: SessionData, callback?: Callback): void {
    const parts = splitSessionId(sid);
    if (!parts || !this.inner.touch) return callback?.();
    const envelope = { cookie: this.expiry(data) } as unknown as SessionData;
    // Typed without an error argument, but connect-redis does pass one.
    const touch = this.inner.touch.bind(this.inner) as (sid: string, sess: SessionData, cb: Callback) => void;
    touch(parts.storeId, envelope, (err) => callback?.(err ? new SessionStoreError(err) : undefined));
  }

  override destroy(sid: string, callback?: Callback): void {
    const parts = splitSessionId(sid);
    if (!parts) return callback?.();
    this.inner.destroy(parts.storeId, (err) => callback?.(err ? new SessionStoreError(err) : undefined));
  }

  private expiry(data: SessionData): Envelope['cookie'] {
    const now = this.options.now();
    const idleEnd = now + this.options.idleTimeoutSec * 1000;
    const absoluteEnd = data.user?.absoluteExpiresAt ?? now + this.options.absoluteTimeoutSec * 1000;
    const end = Math.max(now + 1000, Math.min(idleEnd, absoluteEnd));
    return { expires: new Date(end).toISOString(), originalMaxAge: end - now };
  }
}
