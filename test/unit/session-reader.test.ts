import { describe, expect, test } from '@jest/globals';
import type { IncomingMessage } from 'node:http';
import { sign } from 'cookie-signature';
import type { GatewayConfig } from '../../src/config/types.ts';
import { RecordCipher } from '../../src/session/record-cipher.ts';
import { newHandle } from '../../src/session/handles.ts';
import { LocalInvalidationBus } from '../../src/session/invalidation.ts';
import { SessionReader } from '../../src/session/reader.ts';
import { SessionRepository } from '../../src/session/repository.ts';
import { MemorySessionRecords } from '../../src/session/memory-records.ts';
import { MemoryKeyValueStore } from '../../src/store/kv.ts';

const SECRETS = ['reader-secret-active-4f8a1c9e2b7d6035aa11bb22', 'reader-secret-retired-0d9e8f7a6b5c4d3e2f1a0b9c'];
const COOKIE = 'bff_session';

// Only the three settings the reader reads; the rest of the configuration is irrelevant here.
const config = { cookieName: COOKIE, sessionSecrets: SECRETS, sessionIdleTimeoutSec: 600 } as unknown as GatewayConfig;

async function readerWithSession(): Promise<{ reader: SessionReader; handle: string }> {
  const store = new SessionRepository(new MemorySessionRecords(new MemoryKeyValueStore()), new RecordCipher(SECRETS), { idleTimeoutSec: 600, absoluteTimeoutSec: 3600 });
  const handle = newHandle();
  await store.save(handle, {});
  return { reader: new SessionReader(config, store, new LocalInvalidationBus()), handle };
}

const request = (cookie: string): IncomingMessage => ({ headers: { cookie: `${COOKIE}=${encodeURIComponent(cookie)}` } }) as IncomingMessage;

describe('SessionReader cookie verification (the same as express-session: any configured secret verifies)', () => {
  test.each(SECRETS.map((secret, i) => ({ i, secret })))('a cookie signed with secret #$i loads the session', async ({ secret }) => {
    const { reader, handle } = await readerWithSession();
    await expect(reader.load(request(`s:${sign(handle, secret)}`))).resolves.toMatchObject({ handle });
  });

  test('a cookie signed with an unknown secret, tampered, unsigned or without the s: prefix loads nothing', async () => {
    const { reader, handle } = await readerWithSession();
    const genuine = sign(handle, SECRETS[0] as string);
    for (const cookie of [`s:${sign(handle, 'some-other-secret')}`, `s:${genuine}x`, `s:${handle}`, genuine, `s:${genuine.slice(0, -1)}`]) {
      await expect(reader.load(request(cookie))).resolves.toBeUndefined();
    }
  });
});
