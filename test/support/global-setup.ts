import type { RedisServer } from './redis.ts';

declare global {
  // Jest runs global setup and teardown in the same process: this is how the handle crosses over.
  var __BFF_TEST_REDIS__: RedisServer | undefined;
}

/** One redis-server for the whole run; test workers find it through BFF_TEST_REDIS_URL. */
export default async function globalSetup(): Promise<void> {
  // Jest loads this file outside its module system, after ts-jest has rewritten static
  // `./x.ts` imports to `./x.js`, which do not exist. A computed specifier is left alone,
  // and Node 24 strips the types of redis.ts itself.
  const { startRedis }: typeof import('./redis.ts') = await import(new URL('./redis.ts', import.meta.url).href);
  const redis = await startRedis();
  globalThis.__BFF_TEST_REDIS__ = redis;
  process.env.BFF_TEST_REDIS_URL = redis.url;
}
