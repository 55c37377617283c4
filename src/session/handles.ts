import { randomBytes } from 'node:crypto';

const STORE_ID = /^[A-Za-z0-9_-]{22}$/;
const RECORD_KEY = /^[A-Za-z0-9_-]{43}$/;

/**
 * A handle is `<storeId>.<recordKey>`: the store id names an encrypted record
 * in the store, the record key (256 random bits) is half of its encryption key
 * and exists only in the browser's cookie, never in the store. Sessions (the
 * session cookie) and login transactions (the transaction cookie) are both
 * named this way. A handle is a secret: whoever holds it can read the record.
 */
export function newHandle(): string {
  return `${randomBytes(16).toString('base64url')}.${randomBytes(32).toString('base64url')}`;
}

export function parseHandle(handle: string): { storeId: string; recordKey: Buffer } | undefined {
  const dot = handle.indexOf('.');
  if (dot < 0) return undefined;
  const storeId = handle.slice(0, dot);
  const key = handle.slice(dot + 1);
  if (!STORE_ID.test(storeId) || !RECORD_KEY.test(key)) return undefined;
  return { storeId, recordKey: Buffer.from(key, 'base64url') };
}
