import type { RecordCipher } from './record-cipher.ts';
import { parseHandle } from './handles.ts';
import { sessionRecordId } from './keys.ts';
import { isLegacyRecord, openLegacyRecord } from './legacy-record.ts';
import type { LockFence, ReplaceResult, SessionRecords } from './records.ts';
import { decodeSession, encodeSession, type UnreadableReason } from './session-codec.ts';
import type { SessionState, UserSession } from './types.ts';

export interface SessionRepositoryOptions {
  idleTimeoutSec: number;
  absoluteTimeoutSec: number;
  now?: () => number;
  /**
   * Told when a record decrypted (so it is this gateway's) but could not be
   * read: a bug, or a format this version does not know. The session is
   * treated as absent either way; this is for the operator's log.
   */
  onUnreadable?: (reason: UnreadableReason) => void;
}

/** Told whenever a session is written or destroyed, so that caches of it anywhere can drop it. */
export type SessionChangeListener = (storeId: string) => void;

/**
 * The one way to sessions, for every path: express-session on `/auth`
 * (through ExpressSessionStore), the reader on `/api` and WebSockets, the
 * refresher and logout. A session is named by its handle (the id the cookie
 * carries: store id + session key) or, to end it, by its store id alone.
 *
 * Every session is encrypted: the record store (Redis, or memory) never sees
 * the session key half of the handle, so a dump of it decrypts nothing. A
 * record is the ciphertext and nothing else: its expiry (idle timeout, capped
 * by the session's absolute deadline) is the store's own.
 */
export class SessionRepository {
  private readonly records: SessionRecords;
  private readonly cipher: RecordCipher;
  private readonly options: Required<SessionRepositoryOptions>;
  private changed: SessionChangeListener = () => undefined;

  constructor(records: SessionRecords, cipher: RecordCipher, options: SessionRepositoryOptions) {
    this.records = records;
    this.cipher = cipher;
    this.options = { now: Date.now, onUnreadable: () => undefined, ...options };
  }

  onChange(listener: SessionChangeListener): void {
    this.changed = listener;
  }

  /**
   * The session, or undefined when there is none, it cannot be decrypted or
   * read, or its absolute deadline passed. One store read, one decryption.
   * Rejects when the store fails.
   */
  async load(handle: string): Promise<SessionState | undefined> {
    const parts = parseHandle(handle);
    if (!parts) return undefined;
    const recordId = sessionRecordId(parts.storeId);
    const stored = await this.records.get(recordId);
    if (!stored) return undefined;
    const session = this.open(stored, parts.recordKey, recordId);
    if (session?.user) upgradeUserSession(session.user);
    if (session?.user && session.user.absoluteExpiresAt <= this.options.now()) {
      // Over, however active: gone now rather than at the record's own expiry. A failure leaves that expiry to end it.
      await this.records.remove(recordId).catch(() => false);
      return undefined;
    }
    return session;
  }

  /** Creates or overwrites a session (express-session's `set`: a new session, or one a request changed). */
  async save(handle: string, session: SessionState): Promise<void> {
    const parts = parseHandle(handle);
    if (!parts) throw new Error('malformed session id');
    const recordId = sessionRecordId(parts.storeId);
    try {
      await this.records.set(recordId, this.seal(session, parts.recordKey, recordId), this.ttlMs(session));
    } finally {
      this.changed(parts.storeId);
    }
  }

  /** Slides the idle timeout: the session was used and not changed. Never brings back a session that ended. */
  async touch(handle: string, session: SessionState): Promise<void> {
    const parts = parseHandle(handle);
    if (!parts) return;
    await this.records.expire(sessionRecordId(parts.storeId), this.ttlMs(session));
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
    const session = await this.load(handle);
    if (!session) return undefined;
    const remaining = await this.records.remainingMs(sessionRecordId(parts.storeId));
    if (remaining === undefined) return undefined;
    return Math.min(this.options.now() + remaining, session.user?.absoluteExpiresAt ?? Infinity);
  }

  /**
   * Rewrites an existing session (under the active secret and in the current
   * format, so that rotation and upgrades reach sessions as they are used).
   * Never recreates a destroyed one; with a fence, writes only while the
   * caller still owns that lock.
   */
  replace(handle: string, session: SessionState, fence?: LockFence): Promise<ReplaceResult> {
    const parts = parseHandle(handle);
    if (!parts) return Promise.resolve('gone');
    const recordId = sessionRecordId(parts.storeId);
    return this.records.replace(recordId, this.seal(session, parts.recordKey, recordId), this.ttlMs(session), fence).finally(() => this.changed(parts.storeId));
  }

  /** The record's bytes: the session encoded (session-codec.ts), encrypted under the active secret, bound to its record id. */
  private seal(session: SessionState, recordKey: Buffer, recordId: string): Buffer {
    return this.cipher.encryptBytes(encodeSession(session), recordKey, recordId);
  }

  /** The session a record holds, in the binary format or the one before it; undefined when it does not decrypt or read. */
  private open(stored: Buffer, recordKey: Buffer, recordId: string): SessionState | undefined {
    if (isLegacyRecord(stored)) return openLegacyRecord(stored, this.cipher, recordKey, recordId);
    const plaintext = this.cipher.decryptBytes(stored, recordKey, recordId);
    if (!plaintext) return undefined;
    const decoded = decodeSession(plaintext);
    if (decoded.ok) return decoded.session;
    this.options.onUnreadable(decoded.reason);
    return undefined;
  }

  /** The idle timeout from now, capped by the absolute deadline, and at least a second (a store refuses a zero expiry). */
  private ttlMs(session: SessionState): number {
    const now = this.options.now();
    const idleEnd = now + this.options.idleTimeoutSec * 1000;
    const absoluteEnd = session.user?.absoluteExpiresAt ?? now + this.options.absoluteTimeoutSec * 1000;
    return Math.max(now + 1000, Math.min(idleEnd, absoluteEnd)) - now;
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
