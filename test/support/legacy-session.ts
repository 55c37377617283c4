import { RecordCipher } from '../../src/session/record-cipher.ts';
import type { UserSession } from '../../src/session/types.ts';

/**
 * A session record exactly as releases before the binary format wrote it
 * (connect-redis over the session repository): the JSON of `{ cookie, data }`,
 * `data` the `v1` text envelope of the JSON of express-session's SessionData,
 * cookie included.
 */
export function legacyRecord(user: UserSession, secrets: string[], recordKey: Buffer, recordId: string, ttlMs: number): string {
  return JSON.stringify(legacyEnvelope(user, secrets, recordKey, recordId, ttlMs));
}

/** The object the previous repository handed connect-redis, which stored its JSON with `SET … EX`. */
export function legacyEnvelope(user: UserSession, secrets: string[], recordKey: Buffer, recordId: string, ttlMs: number): { cookie: { expires: string; originalMaxAge: number }; data: string } {
  const expires = new Date(Date.now() + ttlMs).toISOString();
  // express-session's Cookie as it serialised itself into the session.
  const cookie = { originalMaxAge: 43_200_000, expires: new Date(user.createdAt + 43_200_000).toISOString(), secure: false, httpOnly: true, path: '/', sameSite: 'strict' };
  const data = new RecordCipher(secrets).encrypt(JSON.stringify({ cookie, user }), recordKey, recordId);
  return { cookie: { expires, originalMaxAge: ttlMs }, data };
}
