import { randomBytes } from 'node:crypto';

const STORE_ID = /^[A-Za-z0-9_-]{22}$/;
const SESSION_KEY = /^[A-Za-z0-9_-]{43}$/;

/**
 * A session id is `<storeId>.<sessionKey>`: the store id names the record in
 * the store, the session key (256 random bits) is half of the encryption key
 * and exists only in the browser's cookie, never in the store.
 */
export function newSessionId(): string {
  return `${randomBytes(16).toString('base64url')}.${randomBytes(32).toString('base64url')}`;
}

export function splitSessionId(sid: string): { storeId: string; sessionKey: Buffer } | undefined {
  const dot = sid.indexOf('.');
  if (dot < 0) return undefined;
  const storeId = sid.slice(0, dot);
  const key = sid.slice(dot + 1);
  if (!STORE_ID.test(storeId) || !SESSION_KEY.test(key)) return undefined;
  return { storeId, sessionKey: Buffer.from(key, 'base64url') };
}
