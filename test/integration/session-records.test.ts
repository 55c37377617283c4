import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { pino } from 'pino';
import { RecordCipher } from '../../src/session/record-cipher.ts';
import { SessionRepository } from '../../src/session/repository.ts';
import { refreshLockKey } from '../../src/session/keys.ts';
import { newHandle, parseHandle } from '../../src/session/handles.ts';
import { MemoryKeyValueStore, RedisKeyValueStore, type KeyValueStore } from '../../src/store/kv.ts';
import { RedisSessionRecords } from '../../src/session/records.ts';
import { MemorySessionRecords } from '../../src/session/memory-records.ts';
import { createRedisConnection, type RedisConnection } from '../../src/store/redis-client.ts';
import type { UserSession } from '../../src/session/types.ts';

const cipher = new RecordCipher(['records-test-secret-0123456789-abcdefghijklmnop']);
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
      const prefix = 'bff-records-test:sess:';
      return { store: new SessionRepository(new RedisSessionRecords(connection.client, connection.bytes, prefix, (k) => kv.redisKey(k)), cipher, timeouts), kv };
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
