import { beforeEach, describe, expect, jest, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { ByteReader, RecordFormatError, sized, u8 } from '../../src/session/byte-layout.ts';
import { newHandle, parseHandle } from '../../src/session/handles.ts';
import { applyClaimsDelta, claimsDelta, idTokenClaims } from '../../src/session/id-token-claims.ts';
import { sessionRecordId } from '../../src/session/keys.ts';
import { MemorySessionRecords } from '../../src/session/memory-records.ts';
import { RecordCipher } from '../../src/session/record-cipher.ts';
import { SessionRepository } from '../../src/session/repository.ts';
import { decodeSession, encodeSession, type UnreadableReason } from '../../src/session/session-codec.ts';
import { packToken, unpackToken } from '../../src/session/token-bytes.ts';
import type { UserSession } from '../../src/session/types.ts';
import { MemoryKeyValueStore } from '../../src/store/kv.ts';
import { legacyRecord } from '../support/legacy-session.ts';

const SECRET_A = 'format-secret-A-4f8a1c9e2b7d6035aa11bb22cc33dd44';
const SECRET_B = 'format-secret-B-0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a';
const AAD = '{store-id-aad-value}';

const b64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
/** A JWT of the real shape (its signature random bytes: nothing here verifies it). */
const jwt = (payload: object, header: object = { alg: 'RS256', typ: 'JWT', kid: 'k1' }): string => `${b64url(header)}.${b64url(payload)}.${randomBytes(256).toString('base64url')}`;

const ID_PAYLOAD = {
  iss: 'https://idp.example',
  aud: 'bff',
  exp: 2_000_000_000,
  iat: 1_700_000_000,
  nonce: 'n-0S6_WzA2Mj',
  at_hash: 'x',
  auth_time: 1_700_000_000,
  sub: 'alice',
  sid: 'idp-sid-1',
  acr: '1',
  typ: 'ID',
  name: 'Alice Ærø',
  email: 'alice@example.com',
  groups: ['a', 'b'],
  address: { country: 'NO' },
};
const SESSION_CLAIMS = { sub: 'alice', sid: 'idp-sid-1', acr: '1', typ: 'ID', name: 'Alice Ærø', email: 'alice@example.com', groups: ['a', 'b'], address: { country: 'NO' } };

function user(overrides: Partial<UserSession> = {}): UserSession {
  return {
    sub: 'alice',
    claims: { ...SESSION_CLAIMS },
    accessToken: jwt({ sub: 'alice', scope: 'openid profile', aud: ['orders'] }),
    accessTokenExpiresAt: 1_700_000_300_000,
    accessTokenIssuedAt: 1_700_000_000_000,
    refreshToken: jwt({ typ: 'Refresh' }, { alg: 'HS512', typ: 'JWT' }),
    idToken: jwt(ID_PAYLOAD),
    tokenType: 'Bearer',
    scope: 'openid profile email offline_access',
    createdAt: 1_700_000_000_000,
    absoluteExpiresAt: 1_700_043_200_000,
    logoutNonce: 'logout-nonce',
    idpSid: 'idp-sid-1',
    acr: '1',
    authTime: 1_700_000_000,
    ...overrides,
  };
}

const roundTrip = (u: UserSession): UserSession | undefined => {
  const decoded = decodeSession(encodeSession({ user: u }));
  return decoded.ok ? decoded.session.user : undefined;
};

describe('RecordCipher binary records', () => {
  let recordKey: Buffer;
  const plaintext = Buffer.from('{"user":{"accessToken":"secret"}}');
  beforeEach(() => {
    recordKey = randomBytes(32);
  });

  test('round trip; the record is version byte 2, key id, IV, ciphertext and tag, 35 bytes around the plaintext', () => {
    const cipher = new RecordCipher([SECRET_A]);
    const record = cipher.encryptBytes(plaintext, recordKey, AAD);
    expect(record.length).toBe(plaintext.length + 35);
    expect(record[0]).toBe(2);
    expect(record.includes(plaintext)).toBe(false);
    expect(cipher.decryptBytes(record, recordKey, AAD)).toEqual(plaintext);
  });

  test('a truncated record does not decrypt', () => {
    const cipher = new RecordCipher([SECRET_A]);
    const record = cipher.encryptBytes(plaintext, recordKey, AAD);
    for (const length of [0, 1, 7, 19, 34, record.length - 1]) expect(cipher.decryptBytes(record.subarray(0, length), recordKey, AAD)).toBeUndefined();
    // The empty plaintext's record (35 bytes) is whole and decrypts; one byte less does not.
    const empty = cipher.encryptBytes(Buffer.alloc(0), recordKey, AAD);
    expect(cipher.decryptBytes(empty, recordKey, AAD)).toEqual(Buffer.alloc(0));
    expect(cipher.decryptBytes(empty.subarray(0, 34), recordKey, AAD)).toBeUndefined();
  });

  test.each([0x00, 0x01, 0x03, 0x7b, 0x76, 0xff])('a wrong version byte (0x%s) does not decrypt', (version) => {
    const cipher = new RecordCipher([SECRET_A]);
    const record = cipher.encryptBytes(plaintext, recordKey, AAD);
    record[0] = version;
    expect(cipher.decryptBytes(record, recordKey, AAD)).toBeUndefined();
  });

  test('an unknown key id does not decrypt; a retired one still does', () => {
    const record = new RecordCipher([SECRET_A]).encryptBytes(plaintext, recordKey, AAD);
    expect(new RecordCipher([SECRET_B]).decryptBytes(record, recordKey, AAD)).toBeUndefined();
    expect(new RecordCipher([SECRET_B, SECRET_A]).decryptBytes(record, recordKey, AAD)).toEqual(plaintext);
    const renamed = Buffer.from(record);
    renamed.set(randomBytes(6), 1);
    expect(new RecordCipher([SECRET_A]).decryptBytes(renamed, recordKey, AAD)).toBeUndefined();
  });

  test.each([
    ['a key id byte', 3],
    ['the first IV byte', 7],
    ['the last IV byte', 18],
    ['the first ciphertext byte', 19],
    ['a middle ciphertext byte', 30],
    ['the last tag byte', -1],
  ])('a flipped %s does not decrypt', (_name, index) => {
    const cipher = new RecordCipher([SECRET_A]);
    const record = cipher.encryptBytes(plaintext, recordKey, AAD);
    const at = index < 0 ? record.length + index : index;
    record[at] = (record[at] as number) ^ 0x01;
    expect(cipher.decryptBytes(record, recordKey, AAD)).toBeUndefined();
  });

  test('another record key or another storage key (AAD) does not decrypt', () => {
    const cipher = new RecordCipher([SECRET_A]);
    const record = cipher.encryptBytes(plaintext, recordKey, AAD);
    expect(cipher.decryptBytes(record, randomBytes(32), AAD)).toBeUndefined();
    expect(cipher.decryptBytes(record, recordKey, `${AAD}x`)).toBeUndefined();
  });

  test('isStaleBytes: true for records under a retired secret, and for anything that is no binary record', () => {
    const underA = new RecordCipher([SECRET_A]).encryptBytes(plaintext, recordKey, AAD);
    expect(new RecordCipher([SECRET_A, SECRET_B]).isStaleBytes(underA)).toBe(false);
    expect(new RecordCipher([SECRET_B, SECRET_A]).isStaleBytes(underA)).toBe(true);
    expect(new RecordCipher([SECRET_A]).isStaleBytes(Buffer.from('{"data":"v1.x"}'))).toBe(true);
  });
});

describe('tokens as bytes', () => {
  const pack = (token: string | undefined): Buffer => Buffer.concat(packToken(token));
  const unpack = (bytes: Buffer): string | undefined => unpackToken(new ByteReader(bytes));

  test('a JWT is kept as the bytes of its segments, a quarter smaller, and comes back exactly', () => {
    const token = user().accessToken;
    const packed = pack(token);
    expect(packed[0]).toBe(2);
    // Kind and count bytes, a 4-byte length per segment, and the bytes.
    expect(packed.length).toBe(2 + 3 * 4 + token.split('.').reduce((sum, segment) => sum + Buffer.from(segment, 'base64url').length, 0));
    expect(packed.length).toBeLessThan(token.length * 0.8);
    expect(unpack(packed)).toBe(token);
  });

  test('an opaque base64url token (43 characters, 32 bytes) is kept as bytes too', () => {
    const token = randomBytes(32).toString('base64url');
    expect(pack(token)[0]).toBe(2);
    expect(unpack(pack(token))).toBe(token);
  });

  test.each([
    ['padded base64', 'eyJhbGciOiJub25lIn0=.e30=.c2ln'],
    ['a segment with unused bits set (not canonical)', 'ab.cd.ef'],
    ['a segment of a length no base64 has', 'abcde.eyJ9.sig'],
    ['characters outside base64url', 'a+b/cdef.ghij.klmn'],
    ['whitespace', 'eyJh bGci.e30.c2ln'],
    ['non-ASCII text', 'jeton-opaque-ærø-✓'],
    ['more than 255 segments', Array.from({ length: 300 }, () => 'AAAA').join('.')],
    ['a short opaque token, cheaper as text', 'abcd'],
  ])('a token that does not round-trip as bytes (%s) is kept as its text and comes back exactly', (_name, token) => {
    const packed = pack(token);
    expect(packed[0]).toBe(1);
    expect(unpack(packed)).toBe(token);
  });

  test('empty segments and an empty token come back exactly', () => {
    for (const token of ['', 'eyJhbGciOiJub25lIn0.e30.', '..']) expect(unpack(pack(token))).toBe(token);
  });

  test('an absent token is one byte and comes back absent', () => {
    expect(pack(undefined)).toEqual(Buffer.of(0));
    expect(unpack(pack(undefined))).toBeUndefined();
  });

  test('cut short or of an unknown kind: a RecordFormatError, never a read past the end', () => {
    const packed = pack(user().idToken);
    for (const length of [0, 1, 2, 5, 40, packed.length - 1]) expect(() => unpack(packed.subarray(0, length))).toThrow(RecordFormatError);
    expect(() => unpack(Buffer.of(3, 0, 0, 0, 0))).toThrow(RecordFormatError);
    // A length that claims more bytes than the record has.
    expect(() => unpack(Buffer.concat([u8(1), ...sized(Buffer.from('abc'))]).subarray(0, 6))).toThrow(RecordFormatError);
    expect(() => unpack(Buffer.of(1, 0xff, 0xff, 0xff, 0xff, 0x61))).toThrow(/4294967295 bytes wanted/);
  });
});

describe('claims as a delta to the ID token', () => {
  const fromIdToken = idTokenClaims(user().idToken as string) as Record<string, unknown>;

  test("the ID token's claims are its payload without the protocol's members", () => {
    expect(fromIdToken).toEqual(SESSION_CLAIMS);
  });

  test('claims the ID token holds cost nothing; userinfo extras, other values and missing claims are kept, and the order comes back', () => {
    expect(claimsDelta(SESSION_CLAIMS, fromIdToken)).toEqual({});
    const { typ: _dropped, ...rest } = SESSION_CLAIMS;
    const claims = { ...rest, name: 'Alice Changed', groups: ['a', 'b'], picture: 'https://pics.example/alice' };
    const delta = claimsDelta(claims, fromIdToken);
    expect(delta).toEqual({ set: { name: 'Alice Changed', picture: 'https://pics.example/alice' }, unset: ['typ'] });
    const rebuilt = applyClaimsDelta(fromIdToken, JSON.parse(JSON.stringify(delta)) as typeof delta);
    expect(rebuilt).toEqual(claims);
    expect(Object.keys(rebuilt)).toEqual(Object.keys(claims));
  });

  test('a claim named __proto__ stays a claim', () => {
    const idToken = jwt({ sub: 'alice', ['__proto__']: { polluted: true } });
    const payload = JSON.parse(`{"sub":"alice","__proto__":{"polluted":true}}`) as Record<string, unknown>;
    const u = user({ idToken, claims: JSON.parse('{"sub":"alice","__proto__":{"polluted":true},"extra":1}') as Record<string, unknown> });
    expect(Object.hasOwn(payload, '__proto__')).toBe(true);
    const back = roundTrip(u);
    expect(back?.claims).toEqual(u.claims);
    expect(Object.hasOwn(back?.claims ?? {}, '__proto__')).toBe(true);
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
  });

  test.each([
    ['an opaque ID token', 'not-a-jwt'],
    ['an encrypted (5-part) ID token', 'a.b.c.d.e'],
    ['a payload that is not base64url JSON', 'eyJhbGciOiJSUzI1NiJ9.%%%.c2ln'],
    ['a payload that is a JSON array', `eyJhbGciOiJSUzI1NiJ9.${b64url([1, 2])}.c2ln`],
    ['a payload that is JSON null', `eyJhbGciOiJSUzI1NiJ9.${b64url(null)}.c2ln`],
  ])('%s is no source of claims: the record keeps them in full', (_name, idToken) => {
    expect(idTokenClaims(idToken)).toBeUndefined();
    const u = user({ idToken });
    expect(roundTrip(u)).toEqual(u);
  });
});

describe('session plaintext', () => {
  test('a full session comes back equal: tokens, claims, route tokens, DPoP key, timestamps', () => {
    const u = user({
      routeTokens: { 'resource:https://orders.example': { accessToken: jwt({ aud: 'orders' }), tokenType: 'Bearer', issuedAt: 1, expiresAt: 2 } },
      dpopKey: { kty: 'EC', crv: 'P-256', x: 'x', y: 'y', d: 'd' } as unknown as UserSession['dpopKey'],
    });
    expect(roundTrip(u)).toEqual(u);
  });

  test('tokens are not in the plaintext as text, and claims are there once (inside the ID token) rather than twice', () => {
    const u = user();
    const plaintext = encodeSession({ user: u });
    for (const token of [u.accessToken, u.refreshToken as string, u.idToken as string]) expect(plaintext.includes(Buffer.from(token))).toBe(false);
    const email = Buffer.from('alice@example.com');
    expect(plaintext.indexOf(email)).toBeGreaterThan(-1);
    expect(plaintext.indexOf(email, plaintext.indexOf(email) + 1)).toBe(-1);
  });

  test('no compression: a claim that repeats a token makes the record exactly as long as one that does not', () => {
    const u = user();
    const secret = (u.refreshToken as string).slice(0, 200);
    const repeating = encodeSession({ user: { ...u, claims: { ...u.claims, nickname: secret } } });
    const unrelated = encodeSession({ user: { ...u, claims: { ...u.claims, nickname: randomBytes(150).toString('base64url').slice(0, 200) } } });
    expect(repeating.length).toBe(unrelated.length);
    const cipher = new RecordCipher([SECRET_A]);
    expect(cipher.encryptBytes(repeating, randomBytes(32), AAD).length).toBe(cipher.encryptBytes(unrelated, randomBytes(32), AAD).length);
  });

  test("express-session's cookie is not stored", () => {
    const plaintext = encodeSession({ cookie: { originalMaxAge: 1, expires: 'x' }, user: user() } as Parameters<typeof encodeSession>[0]);
    expect(plaintext.includes(Buffer.from('originalMaxAge'))).toBe(false);
    const decoded = decodeSession(plaintext);
    expect(decoded.ok && 'cookie' in decoded.session).toBe(false);
  });

  test('a session without a user, and a user without refresh or ID token, come back equal', () => {
    expect(decodeSession(encodeSession({}))).toEqual({ ok: true, session: {} });
    const { refreshToken: _r, idToken: _i, ...bare } = user();
    expect(roundTrip(bare)).toEqual(bare);
  });

  test('after a refresh brought an ID token with other claims, the delta is to the new one', () => {
    const u = user({ idToken: jwt({ ...ID_PAYLOAD, name: 'Alice Renamed', locale: 'nb' }) });
    expect(roundTrip(u)).toEqual(u);
  });

  function withJson(json: unknown, tokens: Array<string | undefined> = [user().accessToken, undefined, user().idToken]): Buffer {
    return Buffer.concat([...tokens.flatMap(packToken), Buffer.from(typeof json === 'string' ? json : JSON.stringify(json))]);
  }

  test('claims kept as a delta, but the ID token cannot be read on load: a clear outcome, not a crash', () => {
    const delta = { user: { sub: 'alice', claimsDelta: {} } };
    expect(decodeSession(withJson(delta, [user().accessToken, undefined, 'a.%%%.c']))).toEqual({ ok: false, reason: 'id_token_unreadable' });
    expect(decodeSession(withJson(delta, [user().accessToken, undefined, undefined]))).toEqual({ ok: false, reason: 'id_token_unreadable' });
  });

  test.each([
    ['JSON that is an array', [1]],
    ['JSON that is not JSON', '{"user":'],
    ['a user that is not an object', { user: 'alice' }],
    ['a user without claims or a delta', { user: { sub: 'alice' } }],
    ['a delta that is not one', { user: { sub: 'alice', claimsDelta: { unset: 'typ' } } }],
    ['claims that are not an object', { user: { sub: 'alice', claims: ['a'] } }],
  ])('%s: malformed', (_name, json) => {
    expect(decodeSession(withJson(json))).toEqual({ ok: false, reason: 'malformed' });
  });

  test('a user without an access token, or tokens without a user: malformed', () => {
    expect(decodeSession(withJson({ user: { sub: 'alice', claims: {} } }, [undefined, undefined, undefined]))).toEqual({ ok: false, reason: 'malformed' });
    expect(decodeSession(withJson({}, ['token', undefined, undefined]))).toEqual({ ok: false, reason: 'malformed' });
  });

  test('every truncation of a plaintext is malformed, never an exception', () => {
    const plaintext = encodeSession({ user: user() });
    for (let length = 0; length < plaintext.length; length++) expect(decodeSession(plaintext.subarray(0, length)).ok).toBe(false);
  });
});

describe('the repository over records it cannot read', () => {
  function setup(): { records: MemorySessionRecords; repository: SessionRepository; unreadable: jest.Mock<(reason: UnreadableReason) => void> } {
    const records = new MemorySessionRecords(new MemoryKeyValueStore());
    const unreadable = jest.fn<(reason: UnreadableReason) => void>();
    const repository = new SessionRepository(records, new RecordCipher([SECRET_A]), { idleTimeoutSec: 600, absoluteTimeoutSec: 3600, onUnreadable: unreadable });
    return { records, repository, unreadable };
  }
  const live = (): UserSession => user({ createdAt: Date.now(), absoluteExpiresAt: Date.now() + 3_600_000 });

  test('a record that decrypts to something unreadable: no session, and the operator is told why', async () => {
    const { records, repository, unreadable } = setup();
    const handle = newHandle();
    const { storeId, recordKey } = parseHandle(handle) as { storeId: string; recordKey: Buffer };
    const id = sessionRecordId(storeId);
    await records.set(id, new RecordCipher([SECRET_A]).encryptBytes(Buffer.from('garbage'), recordKey, id), 60_000);
    await expect(repository.load(handle)).resolves.toBeUndefined();
    await records.set(
      id,
      new RecordCipher([SECRET_A]).encryptBytes(Buffer.concat([...[live().accessToken, undefined, 'x.y'].flatMap(packToken), Buffer.from('{"user":{"claimsDelta":{}}}')]), recordKey, id),
      60_000,
    );
    await expect(repository.load(handle)).resolves.toBeUndefined();
    expect(unreadable.mock.calls).toEqual([['malformed'], ['id_token_unreadable']]);
  });

  test('garbage that does not decrypt (random bytes, empty, a bare version byte) is no session, and nothing to report', async () => {
    const { records, repository, unreadable } = setup();
    const handle = newHandle();
    const id = sessionRecordId(parseHandle(handle)?.storeId as string);
    for (const value of [randomBytes(200), Buffer.alloc(0), Buffer.of(2), Buffer.from('{'), Buffer.from('{"data":42}'), Buffer.from('{"data":"v1.a.b.c"}')]) {
      await records.set(id, value, 60_000);
      await expect(repository.load(handle)).resolves.toBeUndefined();
    }
    expect(unreadable).not.toHaveBeenCalled();
  });

  test("a record the previous release wrote (connect-redis's JSON, v1 text) loads, and is binary after the next write", async () => {
    const { records, repository } = setup();
    const handle = newHandle();
    const { storeId, recordKey } = parseHandle(handle) as { storeId: string; recordKey: Buffer };
    const id = sessionRecordId(storeId);
    const u = live();
    await records.set(id, Buffer.from(legacyRecord(u, [SECRET_A], recordKey, id, 600_000)), 600_000);
    const loaded = await repository.load(handle);
    expect(loaded).toEqual({ user: u });
    expect(await repository.replace(handle, { user: { ...u, accessToken: 'next' } })).toBe('ok');
    expect((await records.get(id))?.[0]).toBe(2);
    expect((await repository.load(handle))?.user?.accessToken).toBe('next');
  });

  test('an old record under another session key, or copied to another store id, does not load', async () => {
    const { records, repository } = setup();
    const handle = newHandle();
    const { storeId, recordKey } = parseHandle(handle) as { storeId: string; recordKey: Buffer };
    const id = sessionRecordId(storeId);
    await records.set(id, Buffer.from(legacyRecord(live(), [SECRET_A], randomBytes(32), id, 600_000)), 600_000);
    await expect(repository.load(handle)).resolves.toBeUndefined();
    await records.set(id, Buffer.from(legacyRecord(live(), [SECRET_A], recordKey, sessionRecordId('x'.repeat(22)), 600_000)), 600_000);
    await expect(repository.load(handle)).resolves.toBeUndefined();
  });
});
