import { beforeEach, describe, expect, test } from '@jest/globals';
import type { SessionData } from 'express-session';
import { randomBytes } from 'node:crypto';
import { RecordCipher } from '../../src/session/record-cipher.ts';
import { ExpressSessionStore } from '../../src/session/express-store.ts';
import { SessionRepository } from '../../src/session/repository.ts';
import { sessionRecordId as innerIdOf } from '../../src/session/keys.ts';
import { newHandle, parseHandle } from '../../src/session/handles.ts';
import type { UserSession } from '../../src/session/types.ts';
import { MemorySessionRecords } from '../../src/session/memory-records.ts';
import { MemoryKeyValueStore } from '../../src/store/kv.ts';

const SECRET_A = 'server-secret-A-4f8a1c9e2b7d6035aa11bb22cc33dd44';
const SECRET_B = 'server-secret-B-0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a';
const AAD = 'store-id-aad-value';

const ACCESS_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.access-token-payload-7f3a.sig';
const REFRESH_TOKEN = 'refresh-token-9c1e5d7b3a';
const ID_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.id-token-payload-2b8d.sig';

function envelopeParts(envelope: string): string[] {
  return envelope.split('.');
}

/** Flips one bit of the decoded bytes of an envelope field and re-encodes it. */
function flipByte(envelope: string, field: number, index: number): string {
  const parts = envelopeParts(envelope);
  const bytes = Buffer.from(parts[field] as string, 'base64url');
  const at = index < 0 ? bytes.length + index : index;
  bytes[at] = (bytes[at] as number) ^ 0x01;
  parts[field] = bytes.toString('base64url');
  return parts.join('.');
}

describe('RecordCipher', () => {
  const plaintext = JSON.stringify({ user: { accessToken: ACCESS_TOKEN, refreshToken: REFRESH_TOKEN, idToken: ID_TOKEN, sub: 'alice' } });
  let recordKey: Buffer;
  beforeEach(() => {
    recordKey = randomBytes(32);
  });

  test('round trip', () => {
    const cipher = new RecordCipher([SECRET_A]);
    const envelope = cipher.encrypt(plaintext, recordKey, AAD);
    expect(cipher.decrypt(envelope, recordKey, AAD)).toBe(plaintext);
  });

  test('round trip of non-ASCII and empty plaintext', () => {
    const cipher = new RecordCipher([SECRET_A]);
    for (const text of ['', 'héllo wörld ✓ 日本']) expect(cipher.decrypt(cipher.encrypt(text, recordKey, AAD), recordKey, AAD)).toBe(text);
  });

  test('the ciphertext reveals neither the plaintext nor its base64 forms', () => {
    const envelope = new RecordCipher([SECRET_A]).encrypt(plaintext, recordKey, AAD);
    for (const needle of [plaintext, ACCESS_TOKEN, REFRESH_TOKEN, ID_TOKEN, 'alice']) {
      expect(envelope).not.toContain(needle);
      expect(envelope).not.toContain(Buffer.from(needle).toString('base64'));
      expect(envelope).not.toContain(Buffer.from(needle).toString('base64url'));
    }
    expect(envelope).not.toContain(SECRET_A);
    expect(envelope).not.toContain(recordKey.toString('base64url'));
  });

  test('two encryptions of the same plaintext differ (fresh IV)', () => {
    const cipher = new RecordCipher([SECRET_A]);
    const first = cipher.encrypt(plaintext, recordKey, AAD);
    const second = cipher.encrypt(plaintext, recordKey, AAD);
    expect(first).not.toBe(second);
    expect(envelopeParts(first)[2]).not.toBe(envelopeParts(second)[2]);
  });

  test('another session key does not decrypt', () => {
    const cipher = new RecordCipher([SECRET_A]);
    const envelope = cipher.encrypt(plaintext, recordKey, AAD);
    expect(cipher.decrypt(envelope, randomBytes(32), AAD)).toBeUndefined();
  });

  test('another AAD does not decrypt', () => {
    const cipher = new RecordCipher([SECRET_A]);
    const envelope = cipher.encrypt(plaintext, recordKey, AAD);
    expect(cipher.decrypt(envelope, recordKey, `${AAD}x`)).toBeUndefined();
    expect(cipher.decrypt(envelope, recordKey, '')).toBeUndefined();
  });

  test.each([
    ['first ciphertext byte', 3, 0],
    ['last ciphertext byte (tag)', 3, -1],
    ['a middle ciphertext byte', 3, 20],
    ['first IV byte', 2, 0],
    ['last IV byte', 2, -1],
  ])('a flipped %s does not decrypt', (_name, field, index) => {
    const cipher = new RecordCipher([SECRET_A]);
    const envelope = cipher.encrypt(plaintext, recordKey, AAD);
    const tampered = flipByte(envelope, field, index);
    expect(tampered).not.toBe(envelope);
    expect(cipher.decrypt(tampered, recordKey, AAD)).toBeUndefined();
  });

  test('a truncated envelope does not decrypt', () => {
    const cipher = new RecordCipher([SECRET_A]);
    const envelope = cipher.encrypt(plaintext, recordKey, AAD);
    const parts = envelopeParts(envelope);
    const body = Buffer.from(parts[3] as string, 'base64url');
    const cases = [
      envelope.slice(0, -4),
      envelope.slice(0, envelope.lastIndexOf('.')),
      [parts[0], parts[1], parts[2], body.subarray(0, body.length - 1).toString('base64url')].join('.'),
      [parts[0], parts[1], parts[2], body.subarray(0, 15).toString('base64url')].join('.'),
      [parts[0], parts[1], parts[2], ''].join('.'),
      [parts[0], parts[1], (parts[2] as string).slice(0, 8), parts[3]].join('.'),
      '',
      'v1',
    ];
    for (const truncated of cases) expect(cipher.decrypt(truncated, recordKey, AAD)).toBeUndefined();
  });

  test('an unknown key id or version does not decrypt', () => {
    const cipher = new RecordCipher([SECRET_A]);
    const parts = envelopeParts(cipher.encrypt(plaintext, recordKey, AAD));
    expect(cipher.decrypt(['v1', 'AAAAAAAA', parts[2], parts[3]].join('.'), recordKey, AAD)).toBeUndefined();
    expect(cipher.decrypt(['v2', parts[1], parts[2], parts[3]].join('.'), recordKey, AAD)).toBeUndefined();
    expect(cipher.decrypt([...parts, 'extra'].join('.'), recordKey, AAD)).toBeUndefined();
  });

  test('the envelope names its key: stable per secret, different per secret, never the secret', () => {
    const idA = envelopeParts(new RecordCipher([SECRET_A]).encrypt('x', recordKey, AAD))[1] as string;
    const idA2 = envelopeParts(new RecordCipher([SECRET_A, SECRET_B]).encrypt('y', randomBytes(32), 'other'))[1];
    const idB = envelopeParts(new RecordCipher([SECRET_B]).encrypt('x', recordKey, AAD))[1] as string;
    expect(idA).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(idA2).toBe(idA);
    expect(idB).not.toBe(idA);
    for (const id of [idA, idB]) {
      expect(SECRET_A).not.toContain(id);
      expect(SECRET_B).not.toContain(id);
      expect(id.length).toBeLessThan(SECRET_A.length);
    }
  });

  test('rotation: written under [A], read by [B, A] but not by [B]', () => {
    const envelope = new RecordCipher([SECRET_A]).encrypt(plaintext, recordKey, AAD);
    expect(new RecordCipher([SECRET_B, SECRET_A]).decrypt(envelope, recordKey, AAD)).toBe(plaintext);
    expect(new RecordCipher([SECRET_B]).decrypt(envelope, recordKey, AAD)).toBeUndefined();
  });

  test('rotation: [B, A] writes under B', () => {
    const envelope = new RecordCipher([SECRET_B, SECRET_A]).encrypt(plaintext, recordKey, AAD);
    expect(new RecordCipher([SECRET_B]).decrypt(envelope, recordKey, AAD)).toBe(plaintext);
    expect(new RecordCipher([SECRET_A]).decrypt(envelope, recordKey, AAD)).toBeUndefined();
  });

  test('isStale is true only for envelopes not written under the active secret', () => {
    const underA = new RecordCipher([SECRET_A]).encrypt(plaintext, recordKey, AAD);
    expect(new RecordCipher([SECRET_A]).isStale(underA)).toBe(false);
    expect(new RecordCipher([SECRET_A, SECRET_B]).isStale(underA)).toBe(false);
    expect(new RecordCipher([SECRET_B, SECRET_A]).isStale(underA)).toBe(true);
    expect(new RecordCipher([SECRET_B, SECRET_A]).isStale(new RecordCipher([SECRET_B]).encrypt(plaintext, recordKey, AAD))).toBe(false);
  });

  test('needs at least one secret', () => {
    expect(() => new RecordCipher([])).toThrow();
  });
});

describe('handles (session and login-transaction ids)', () => {
  test('a new id is <22-char store id>.<43-char key> and splits back', () => {
    const handle = newHandle();
    expect(handle).toMatch(/^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/);
    const parts = parseHandle(handle);
    expect(parts?.storeId).toBe(handle.slice(0, 22));
    expect(parts?.recordKey).toHaveLength(32);
    expect(parts?.recordKey.toString('base64url')).toBe(handle.slice(23));
  });

  test('ids do not repeat', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newHandle()));
    expect(ids.size).toBe(1000);
  });

  test.each([
    '',
    'nodot',
    '.',
    'abc.def',
    `${'a'.repeat(22)}.${'b'.repeat(42)}`,
    `${'a'.repeat(21)}.${'b'.repeat(43)}`,
    `${'a'.repeat(22)}.${'b'.repeat(43)}.c`,
    `${'a'.repeat(22)}.${'b'.repeat(42)}=`,
    `${'a'.repeat(21)}/.${'b'.repeat(43)}`,
    `${'a'.repeat(22)}${'b'.repeat(43)}`,
  ])('%j is malformed', (handle) => {
    expect(parseHandle(handle)).toBeUndefined();
  });
});

/** The memory record store, remembering every record id it was asked to write. */
class RecordingRecords extends MemorySessionRecords {
  readonly written = new Set<string>();
  override async set(recordId: string, value: Buffer, ttlMs: number): Promise<void> {
    this.written.add(recordId);
    await super.set(recordId, value, ttlMs);
  }
}

/** Every form a secret could be found in a binary record: its text, base64 forms and, for base64url text (a JWT's segments), the bytes it encodes. */
function forms(needle: string): Buffer[] {
  const found = [Buffer.from(needle), Buffer.from(Buffer.from(needle).toString('base64')), Buffer.from(Buffer.from(needle).toString('base64url'))];
  for (const segment of needle.split('.')) if (segment.length >= 8 && /^[A-Za-z0-9_-]+$/.test(segment)) found.push(Buffer.from(segment, 'base64url'));
  return found;
}

describe('encrypted sessions in the memory record store (express-session adapter over the repository)', () => {
  const IDLE_SEC = 1800;
  const ABSOLUTE_SEC = 43200;
  const COOKIE = { maxAgeMs: ABSOLUTE_SEC * 1000, httpOnly: true, secure: true, sameSite: 'strict' as const, path: '/' };
  /** The repository's clock, and the record store's: apart only where a test needs them apart. */
  let clock: number;
  let storeClock: number;
  let inner: RecordingRecords;
  let store: ExpressSessionStore;

  function user(overrides: Partial<UserSession> = {}): UserSession {
    return {
      sub: 'alice',
      claims: { sub: 'alice', email: 'alice@example.com' },
      accessToken: ACCESS_TOKEN,
      accessTokenExpiresAt: clock + 300_000,
      refreshToken: REFRESH_TOKEN,
      idToken: ID_TOKEN,
      tokenType: 'Bearer',
      createdAt: clock,
      absoluteExpiresAt: clock + ABSOLUTE_SEC * 1000,
      logoutNonce: 'logout-nonce-value',
      ...overrides,
    };
  }

  function data(u?: UserSession): SessionData {
    return { cookie: { originalMaxAge: ABSOLUTE_SEC * 1000 }, ...(u ? { user: u } : {}) } as SessionData;
  }
  function repository(secrets: string[]): SessionRepository {
    return new SessionRepository(inner, new RecordCipher(secrets), { idleTimeoutSec: IDLE_SEC, absoluteTimeoutSec: ABSOLUTE_SEC, now: () => clock });
  }
  function advance(ms: number): void {
    clock += ms;
    storeClock += ms;
  }

  function get(handle: string, from: ExpressSessionStore = store): Promise<SessionData | null | undefined> {
    return new Promise((resolve, reject) => from.get(handle, (err, d) => (err ? reject(err) : resolve(d))));
  }
  function set(handle: string, d: SessionData): Promise<void> {
    return new Promise((resolve, reject) => store.set(handle, d, (err) => (err ? reject(err) : resolve())));
  }
  function touch(handle: string, d: SessionData): Promise<void> {
    return new Promise((resolve, reject) => store.touch(handle, d, (err) => (err ? reject(err) : resolve())));
  }
  function destroy(handle: string): Promise<void> {
    return new Promise((resolve, reject) => store.destroy(handle, (err) => (err ? reject(err) : resolve())));
  }
  async function innerExpires(storeId: string): Promise<number> {
    const remaining = await inner.remainingMs(innerIdOf(storeId));
    expect(remaining).toBeDefined();
    return storeClock + (remaining as number);
  }

  beforeEach(() => {
    clock = Date.now();
    storeClock = clock;
    inner = new RecordingRecords(new MemoryKeyValueStore(), () => storeClock);
    store = new ExpressSessionStore(repository([SECRET_A]), COOKIE);
  });

  test('a session written before the logout nonce was renamed (logoutSid) still logs out with its nonce', async () => {
    const handle = newHandle();
    const { logoutNonce: _renamed, ...rest } = user();
    await set(handle, data({ ...rest, logoutSid: 'legacy-nonce' } as unknown as UserSession));
    const loaded = await get(handle);
    expect(loaded?.user?.logoutNonce).toBe('legacy-nonce');
    expect(loaded?.user).not.toHaveProperty('logoutSid');
  });

  test('set then get returns the data', async () => {
    const handle = newHandle();
    const u = user();
    await set(handle, data(u));
    const loaded = await get(handle);
    expect(loaded?.user).toEqual(u);
  });

  test("get gives express-session back the configured cookie, expiring the cookie's max age after the login", async () => {
    const handle = newHandle();
    await set(handle, data(user({ createdAt: clock - 60_000, absoluteExpiresAt: clock - 60_000 + ABSOLUTE_SEC * 1000 })));
    const loaded = await get(handle);
    expect(loaded?.cookie).toEqual({
      originalMaxAge: ABSOLUTE_SEC * 1000,
      expires: new Date(clock - 60_000 + ABSOLUTE_SEC * 1000).toISOString(),
      httpOnly: true,
      secure: true,
      sameSite: 'strict',
      path: '/',
    });
    // A session whose deadline lies beyond the configured max age (shortened since its login) keeps its cookie until then.
    const longer = newHandle();
    await set(longer, data(user({ createdAt: clock, absoluteExpiresAt: clock + 2 * ABSOLUTE_SEC * 1000 })));
    expect((await get(longer))?.cookie?.expires).toBe(new Date(clock + 2 * ABSOLUTE_SEC * 1000).toISOString());
  });

  test('the inner store holds no token, no claim and no session key, keyed by the store id only', async () => {
    const handle = newHandle();
    await set(handle, data(user()));
    const { storeId, recordKey } = parseHandle(handle) ?? { storeId: '', recordKey: Buffer.alloc(0) };
    expect([...inner.written]).toEqual([innerIdOf(storeId)]);
    const record = (await inner.get(innerIdOf(storeId))) as Buffer;
    for (const needle of [ACCESS_TOKEN, REFRESH_TOKEN, ID_TOKEN, 'alice@example.com', 'logout-nonce-value', recordKey.toString('base64url'), handle]) {
      for (const form of forms(needle)) expect(record.includes(form)).toBe(false);
    }
    expect(record.includes(recordKey)).toBe(false);
    // A binary record: version byte 2, then the key id.
    expect(record[0]).toBe(2);
  });

  test('a malformed handle: get returns null without an error', async () => {
    await expect(get('not-a-session-id')).resolves.toBeNull();
    await expect(get('')).resolves.toBeNull();
  });

  test('an unknown handle: get returns null', async () => {
    await expect(get(newHandle())).resolves.toBeNull();
  });

  test('the right store id with another session key: null, and the record stays for its owner', async () => {
    const handle = newHandle();
    await set(handle, data(user()));
    const storeId = handle.slice(0, handle.indexOf('.'));
    const forged = `${storeId}.${randomBytes(32).toString('base64url')}`;
    await expect(get(forged)).resolves.toBeNull();
    expect((await get(handle))?.user?.sub).toBe('alice');
  });

  test('a record copied under another store id does not decrypt (AAD binds it)', async () => {
    const handle = newHandle();
    await set(handle, data(user()));
    const parts = parseHandle(handle);
    const stored = (await inner.get(innerIdOf(parts?.storeId ?? ''))) as Buffer;
    const otherStoreId = randomBytes(16).toString('base64url');
    await inner.set(innerIdOf(otherStoreId), stored, 60_000);
    await expect(get(`${otherStoreId}.${parts?.recordKey.toString('base64url')}`)).resolves.toBeNull();
    expect((await get(handle))?.user?.sub).toBe('alice');
  });

  test('a session written under a retired secret is readable after rotation', async () => {
    const handle = newHandle();
    await set(handle, data(user()));
    const loaded = await get(handle, new ExpressSessionStore(repository([SECRET_B, SECRET_A]), COOKIE));
    expect(loaded?.user?.accessToken).toBe(ACCESS_TOKEN);
    await expect(get(handle, new ExpressSessionStore(repository([SECRET_B]), COOKIE))).resolves.toBeNull();
  });

  test('rotation: a session record rewritten under [B, A] is under B, and B alone then reads it', async () => {
    const handle = newHandle();
    const recordId = innerIdOf(parseHandle(handle)?.storeId ?? '');
    await set(handle, data(user()));
    const rotated = repository([SECRET_B, SECRET_A]);
    expect(new RecordCipher([SECRET_B, SECRET_A]).isStaleBytes((await inner.get(recordId)) as Buffer)).toBe(true);
    expect(await rotated.replace(handle, { user: user({ accessToken: 'refreshed' }) })).toBe('ok');
    expect(new RecordCipher([SECRET_B, SECRET_A]).isStaleBytes((await inner.get(recordId)) as Buffer)).toBe(false);
    expect((await get(handle, new ExpressSessionStore(repository([SECRET_B]), COOKIE)))?.user?.accessToken).toBe('refreshed');
  });

  test('a session past its absolute deadline is gone, and so is its inner record', async () => {
    const handle = newHandle();
    const storeId = handle.slice(0, handle.indexOf('.'));
    await set(handle, data(user({ absoluteExpiresAt: clock + 60_000 })));
    // The store's own clock stays put: the record is removed by the repository, not expired by the store.
    clock += 59_000;
    expect((await get(handle))?.user?.sub).toBe('alice');
    clock += 1_000;
    await expect(get(handle)).resolves.toBeNull();
    await expect(inner.get(innerIdOf(storeId))).resolves.toBeUndefined();
  });

  test('the inner expiry is now + idle when the absolute deadline is further', async () => {
    const handle = newHandle();
    await set(handle, data(user()));
    expect(await innerExpires(handle.slice(0, 22))).toBe(clock + IDLE_SEC * 1000);
  });

  test('the inner expiry is the absolute deadline when that comes first', async () => {
    const handle = newHandle();
    const deadline = clock + 600_000;
    await set(handle, data(user({ absoluteExpiresAt: deadline })));
    expect(await innerExpires(handle.slice(0, 22))).toBe(deadline);
  });

  test('without a user the inner expiry is the idle timeout', async () => {
    const handle = newHandle();
    await set(handle, data());
    expect(await innerExpires(handle.slice(0, 22))).toBe(clock + IDLE_SEC * 1000);
  });

  test('touch slides the idle expiry, capped by the absolute deadline, and keeps the data', async () => {
    const handle = newHandle();
    const storeId = handle.slice(0, 22);
    const started = clock;
    const deadline = started + 3600_000;
    const d = data(user({ absoluteExpiresAt: deadline }));
    await set(handle, d);
    expect(await innerExpires(storeId)).toBe(started + IDLE_SEC * 1000);

    advance(600_000);
    await touch(handle, d);
    expect(await innerExpires(storeId)).toBe(started + 600_000 + IDLE_SEC * 1000);
    expect((await get(handle))?.user?.refreshToken).toBe(REFRESH_TOKEN);

    advance(1500_000);
    await touch(handle, d);
    expect(await innerExpires(storeId)).toBe(deadline);
  });

  test('touch never brings back a session that ended', async () => {
    const handle = newHandle();
    const d = data(user());
    await set(handle, d);
    await destroy(handle);
    await touch(handle, d);
    await expect(get(handle)).resolves.toBeNull();
    expect(await inner.remainingMs(innerIdOf(handle.slice(0, 22)))).toBeUndefined();
  });

  test('touch with a malformed handle does nothing and does not fail', async () => {
    await expect(touch('bad', data())).resolves.toBeUndefined();
    expect(inner.written.size).toBe(0);
  });

  test('set with a malformed handle is an error and stores nothing', async () => {
    await expect(set('bad', data(user()))).rejects.toThrow();
    expect(inner.written.size).toBe(0);
  });

  test('destroy removes the record', async () => {
    const handle = newHandle();
    await set(handle, data(user()));
    await destroy(handle);
    await expect(get(handle)).resolves.toBeNull();
    await expect(inner.get(innerIdOf(handle.slice(0, 22)))).resolves.toBeUndefined();
  });
});
