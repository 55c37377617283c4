import type { RecordCipher } from './record-cipher.ts';
import type { SessionState } from './types.ts';

/** First byte of a record connect-redis wrote: the JSON of `{ cookie, data }`. */
const LEGACY_FIRST_BYTE = '{'.charCodeAt(0);

export function isLegacyRecord(stored: Buffer): boolean {
  return stored[0] === LEGACY_FIRST_BYTE;
}

/**
 * A session record as releases before the binary format stored it through
 * connect-redis: JSON `{"cookie":{…},"data":"v1.<key id>.<iv>.<ciphertext>"}`
 * whose ciphertext holds the JSON of express-session's SessionData. Read so
 * that a deploy logs no one out; the next write of the session (a refresh,
 * a login) stores it in the binary format. Undefined for anything that does
 * not decrypt and parse. Drop once no such record can be alive: the absolute
 * timeout after the first release that wrote binary records.
 */
export function openLegacyRecord(stored: Buffer, cipher: RecordCipher, recordKey: Buffer, aad: string): SessionState | undefined {
  let envelope: unknown;
  try {
    envelope = JSON.parse(stored.toString('utf8'));
  } catch {
    return undefined;
  }
  const data = typeof envelope === 'object' && envelope !== null ? (envelope as { data?: unknown }).data : undefined;
  if (typeof data !== 'string') return undefined;
  const plaintext = cipher.decrypt(data, recordKey, aad);
  if (plaintext === undefined) return undefined;
  let session: unknown;
  try {
    session = JSON.parse(plaintext);
  } catch {
    return undefined;
  }
  if (typeof session !== 'object' || session === null || Array.isArray(session)) return undefined;
  // The stored cookie is express-session's; the adapter gives it a fresh one, as it does for binary records.
  const { cookie: _stored, ...state } = session as SessionState & { cookie?: unknown };
  return state;
}
