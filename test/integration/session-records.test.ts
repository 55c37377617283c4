import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createClient } from '@redis/client';
import { RedisStore } from 'connect-redis';
import type { SessionData } from 'express-session';
import { pino } from 'pino';
import { RecordCipher } from '../../src/session/record-cipher.ts';
import { SessionRepository } from '../../src/session/repository.ts';
import { refreshLockKey, sessionRecordId } from '../../src/session/keys.ts';
import { newHandle, parseHandle } from '../../src/session/handles.ts';
import { MemoryKeyValueStore, RedisKeyValueStore, type KeyValueStore } from '../../src/store/kv.ts';
import { RedisSessionRecords } from '../../src/session/records.ts';
import { MemorySessionRecords } from '../../src/session/memory-records.ts';
import { createRedisConnection, type RedisConnection } from '../../src/store/redis-client.ts';
import type { UserSession } from '../../src/session/types.ts';
import { legacyEnvelope } from '../support/legacy-session.ts';

const SECRET = 'records-test-secret-0123456789-abcdefghijklmnop';
const cipher = new RecordCipher([SECRET]);
const PREFIX = 'bff-records-test:sess:';
const timeouts = { idleTimeoutSec: 600, absoluteTimeoutSec: 3600 };

function user(accessToken: string): UserSession {
  const now = Date.now();
  return { sub: 'alice', claims: {}, accessToken, tokenType: 'bearer', createdAt: now, absoluteExpiresAt: now + 3_600_000, logoutNonce: 'x' };
}
let connection: RedisConnection;

beforeAll(async () => {
  const url = process.env.BFF_TEST_REDIS_URL;
  if (!url) throw new Error('BFF_TEST_REDIS_URL is not set');
  connection = createRedisConnection({ kind: 'single', url }, pino({ level: 'silent' }));
  // The gateway's client connects in the background (it must start while Redis is down).
  while (!connection.client.isReady) await new Promise((r) => setTimeout(r, 10));
});
afterAll(async () => {
  await connection?.client.close();
});

const variants: Array<[string, () => { store: SessionRepository; kv: KeyValueStore }]> = [
  [
    'redis',
    () => {
      const kv = new RedisKeyValueStore(connection.client, 'bff-records-test:');
      return { store: new SessionRepository(new RedisSessionRecords(connection.client, connection.bytes, PREFIX, (k) => kv.redisKey(k)), cipher, timeouts), kv };
    },
  ],
  [
    'memory',
    () => {
      const kv = new MemoryKeyValueStore();
      return { store: new SessionRepository(new MemorySessionRecords(kv), cipher, timeouts), kv };
    },
  ],
];

describe.each(variants)('session replace (%s)', (_name, make) => {
  const write = (store: SessionRepository, sid: string, token: string) => store.save(sid, { user: user(token) });

  test('replaces an existing session while the writer holds the lock', async () => {
    const { store, kv } = make();
    const sid = newHandle();
    await write(store, sid, 'old');
    const lock = refreshLockKey(parseHandle(sid)?.storeId as string);
    const token = (await kv.acquireLock(lock, 5000)) as string;
    expect(await store.replace(sid, { user: user('new') }, { key: lock, token })).toBe('ok');
    expect((await store.load(sid))?.user?.accessToken).toBe('new');
    await kv.releaseLock(lock, token);
  });

  test('never brings back a session destroyed in the meantime', async () => {
    const { store } = make();
    const sid = newHandle();
    await write(store, sid, 'old');
    await store.destroy(parseHandle(sid)?.storeId as string);
    expect(await store.replace(sid, { user: user('new') })).toBe('gone');
    expect(await store.load(sid)).toBeUndefined();
  });

  test('does not write when the lock has passed to someone else', async () => {
    const { store, kv } = make();
    const sid = newHandle();
    await write(store, sid, 'newer');
    const lock = refreshLockKey(parseHandle(sid)?.storeId as string);
    const theirs = (await kv.acquireLock(lock, 5000)) as string;
    expect(await store.replace(sid, { user: user('older') }, { key: lock, token: 'expired-holder' })).toBe('lost-lock');
    expect((await store.load(sid))?.user?.accessToken).toBe('newer');
    await kv.releaseLock(lock, theirs);
  });
});

describe('records in Redis', () => {
  const redisStore = (): SessionRepository => variants[0]?.[1]().store as SessionRepository;

  test('a record connect-redis wrote for the previous release loads, keeps its TTL, and is bytes after the next write', async () => {
    const legacyClient = createClient({ url: process.env.BFF_TEST_REDIS_URL as string });
    await legacyClient.connect();
    try {
      const store = redisStore();
      const sid = newHandle();
      const { storeId, recordKey } = parseHandle(sid) as { storeId: string; recordKey: Buffer };
      const recordId = sessionRecordId(storeId);
      // Written by connect-redis itself, as the previous release did: JSON, SET … EX.
      await new RedisStore({ client: legacyClient, prefix: PREFIX }).set(recordId, legacyEnvelope(user('old'), [SECRET], recordKey, recordId, 600_000) as unknown as SessionData);
      expect(((await legacyClient.get(PREFIX + recordId)) as string).startsWith('{"cookie":{"expires":')).toBe(true);
      expect((await store.load(sid))?.user?.accessToken).toBe('old');
      expect(await legacyClient.pTTL(PREFIX + recordId)).toBeGreaterThan(590_000);
      await store.touch(sid, { user: user('old') });
      expect(((await legacyClient.get(PREFIX + recordId)) as string).startsWith('{')).toBe(true);
      expect(await store.replace(sid, { user: user('new') })).toBe('ok');
      const raw = await connection.bytes.get(PREFIX + recordId);
      expect(Buffer.isBuffer(raw) && raw[0]).toBe(2);
      expect((await store.load(sid))?.user?.accessToken).toBe('new');
    } finally {
      await legacyClient.close();
    }
  });

  test('touch slides the TTL of a live record and never recreates one that is gone', async () => {
    const store = redisStore();
    const sid = newHandle();
    const key = PREFIX + sessionRecordId(parseHandle(sid)?.storeId as string);
    await store.save(sid, { user: user('a') });
    await connection.client.eval("return redis.call('PEXPIRE', KEYS[1], 5000)", { keys: [key], arguments: [] });
    await store.touch(sid, { user: user('a') });
    expect(Number(await connection.client.eval("return redis.call('PTTL', KEYS[1])", { keys: [key], arguments: [] }))).toBeGreaterThan(590_000);
    await store.destroy(parseHandle(sid)?.storeId as string);
    await store.touch(sid, { user: user('a') });
    expect(await connection.client.exists(key)).toBe(0);
  });
});
