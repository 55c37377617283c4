import { RESP_TYPES } from '@redis/client';
import type { rawRedis } from './stack.ts';
import { parseHandle } from '../../src/session/handles.ts';
import { sessionRecordId } from '../../src/session/keys.ts';
import { RecordCipher } from '../../src/session/record-cipher.ts';
import { decodeSession } from '../../src/session/session-codec.ts';
import type { UserSession } from '../../src/session/types.ts';

type RawRedis = Awaited<ReturnType<typeof rawRedis>>;

/** A reader of the same connection whose string replies are Buffers: session records are binary, and UTF-8 decoding would mangle them. */
export const asBytes = (redis: RawRedis) => redis.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });

/** The Redis key of the session a `Cookie: bff=…` header (or a bare cookie value) names. */
export function sessionKeyOf(cookie: string): { key: string; recordId: string; recordKey: Buffer } {
  const value = decodeURIComponent(/(?:^|[ ;])bff=([^;]+)/.exec(cookie)?.[1] ?? cookie).replace(/^s:/, '');
  const parts = parseHandle(value.split('.').slice(0, 2).join('.'));
  if (!parts) throw new Error('no session handle in the cookie');
  const recordId = sessionRecordId(parts.storeId);
  return { key: `bff:sess:${recordId}`, recordId, recordKey: parts.recordKey };
}

/** The session record's bytes as Redis holds them. */
export async function storedRecord(redis: RawRedis, cookie: string): Promise<Buffer> {
  const value = await asBytes(redis).get(sessionKeyOf(cookie).key);
  if (!Buffer.isBuffer(value)) throw new Error('no session record in Redis');
  return value;
}

/** The session as the gateway stored it, decrypted with the cookie's key half (what only the browser holds). */
export async function storedSession(redis: RawRedis, cookie: string, secrets: string[]): Promise<UserSession> {
  const { recordId, recordKey } = sessionKeyOf(cookie);
  const plaintext = new RecordCipher(secrets).decryptBytes(await storedRecord(redis, cookie), recordKey, recordId);
  if (!plaintext) throw new Error('the session record does not decrypt');
  const decoded = decodeSession(plaintext);
  if (!decoded.ok || !decoded.session.user) throw new Error('the session record holds no user');
  return decoded.session.user;
}

/** The name of the secret a binary record was written under (bytes 1–6, after the version byte). */
export const recordKeyId = (record: Buffer): string => record.subarray(1, 7).toString('base64url');

/** Every string value in Redis as bytes, and every set member, with each key's name. */
export async function everythingInRedis(redis: RawRedis): Promise<Buffer[]> {
  const values: Buffer[] = [];
  for await (const keys of redis.scanIterator({ COUNT: 1000 })) {
    for (const key of keys) {
      values.push(Buffer.from(key));
      const type = await redis.type(key);
      if (type === 'string') values.push((await asBytes(redis).get(key)) ?? Buffer.alloc(0));
      else if (type === 'set') values.push(...(await redis.sMembers(key)).map((member) => Buffer.from(member)));
      else if (type === 'hash') values.push(Buffer.from(JSON.stringify(await redis.hGetAll(key))));
      else if (type === 'zset') values.push(Buffer.from(JSON.stringify(await redis.zRange(key, 0, -1))));
    }
  }
  return values;
}

/**
 * The forms a secret could be found in: its text, base64 and base64url, and
 * for text that is base64url (a JWT's segments, a JWK member) the bytes it
 * encodes, since records keep such tokens as bytes before encrypting them.
 */
export function secretForms(secret: string): Buffer[] {
  const text = Buffer.from(secret);
  const forms = [text, Buffer.from(text.toString('base64')), Buffer.from(text.toString('base64url'))];
  for (const segment of secret.split('.')) {
    if (segment.length >= 16 && /^[A-Za-z0-9_-]+$/.test(segment)) forms.push(Buffer.from(segment), Buffer.from(segment, 'base64url'));
  }
  return forms;
}
