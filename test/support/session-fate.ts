import { expect } from '@jest/globals';
import request from 'supertest';

/** A signed-in browser's session as a test holds it: its cookie and its record's Redis key. */
export type HeldSession = { cookie: string; storeKey: string };

type RedisKeys = { exists(key: string): Promise<number> };

/**
 * Whether a session is alive or ended everywhere: on every gateway instance (GET /auth/user)
 * and in Redis. The instances and the client are read when asked, so a suite can pass
 * getters for what its beforeAll creates.
 */
export function sessionFate(instanceUrls: () => string[], redis: () => RedisKeys) {
  async function statuses(session: HeldSession): Promise<number[]> {
    return Promise.all(instanceUrls().map(async (url) => (await request(url).get('/auth/user').set('Cookie', session.cookie)).status));
  }
  return {
    async expectAlive(session: HeldSession): Promise<void> {
      expect(await statuses(session)).toEqual(instanceUrls().map(() => 200));
      expect(await redis().exists(session.storeKey)).toBe(1);
    },
    async expectEnded(session: HeldSession): Promise<void> {
      expect(await statuses(session)).toEqual(instanceUrls().map(() => 401));
      expect(await redis().exists(session.storeKey)).toBe(0);
    },
  };
}
