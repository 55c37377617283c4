import type { SessionState } from './types.ts';

interface Entry {
  handle: string;
  storeId: string;
  data: SessionState;
  /** Epoch ms after which the entry is read from the store again. */
  freshUntil: number;
}

/**
 * Decrypted sessions, keyed by the exact cookie value, for a few seconds: a
 * hit skips the signature check, the store read and the decryption. Entries
 * are dropped by store id when the session changes anywhere (see
 * InvalidationBus) and expire on their own, which bounds how long a missed
 * invalidation can matter. A read that was already under way when its
 * session was invalidated is not cached, so a logout elsewhere cannot be
 * undone by a slow read here.
 */
export class SessionCache {
  private readonly entries = new Map<string, Entry>();
  private readonly byStoreId = new Map<string, Set<string>>();
  /** When each store id was last invalidated; kept a little longer than an entry can live. */
  private readonly invalidatedAt = new Map<string, number>();
  private clearedAt = 0;
  private readonly ttlMs: number;
  private readonly maxEntries: number;

  constructor(ttlMs: number, maxEntries = 50_000) {
    this.ttlMs = ttlMs;
    this.maxEntries = maxEntries;
  }

  get(cookie: string, now: number): Entry | undefined {
    const entry = this.entries.get(cookie);
    if (!entry) return undefined;
    if (entry.freshUntil <= now || (entry.data.user && entry.data.user.absoluteExpiresAt <= now)) {
      this.remove(cookie, entry.storeId);
      return undefined;
    }
    return entry;
  }

  /** Caches what a store read that started at `readStartedAt` returned, unless the session changed since. */
  set(cookie: string, handle: string, storeId: string, data: SessionState, readStartedAt: number, now: number): void {
    if (this.clearedAt >= readStartedAt || (this.invalidatedAt.get(storeId) ?? -1) >= readStartedAt) return;
    if (this.entries.size >= this.maxEntries) {
      // Map iteration is insertion order: drop the oldest entry.
      const oldest = this.entries.entries().next().value;
      if (oldest) this.remove(oldest[0], oldest[1].storeId);
    }
    this.entries.set(cookie, { handle, storeId, data, freshUntil: now + this.ttlMs });
    let cookies = this.byStoreId.get(storeId);
    if (!cookies) this.byStoreId.set(storeId, (cookies = new Set()));
    cookies.add(cookie);
  }

  invalidate(storeId: string, now: number): void {
    if (this.invalidatedAt.size >= this.maxEntries) this.pruneInvalidations(now);
    this.invalidatedAt.set(storeId, now);
    const cookies = this.byStoreId.get(storeId);
    if (!cookies) return;
    for (const cookie of cookies) this.entries.delete(cookie);
    this.byStoreId.delete(storeId);
  }

  clear(now: number): void {
    this.clearedAt = now;
    this.entries.clear();
    this.byStoreId.clear();
    this.invalidatedAt.clear();
  }

  get size(): number {
    return this.entries.size;
  }

  private remove(cookie: string, storeId: string): void {
    this.entries.delete(cookie);
    const cookies = this.byStoreId.get(storeId);
    cookies?.delete(cookie);
    if (cookies?.size === 0) this.byStoreId.delete(storeId);
  }

  /** A read can be in flight for at most the store deadline; older invalidations no longer matter. */
  private pruneInvalidations(now: number): void {
    for (const [storeId, at] of this.invalidatedAt) if (now - at > 2 * this.ttlMs + 5_000) this.invalidatedAt.delete(storeId);
  }
}
