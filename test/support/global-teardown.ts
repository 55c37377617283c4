/** Stops the redis-server that global-setup.ts started (its `declare global` types the handle). */
export default async function globalTeardown(): Promise<void> {
  await globalThis.__BFF_TEST_REDIS__?.stop();
  globalThis.__BFF_TEST_REDIS__ = undefined;
}
