import { forSession } from '../store/errors.ts';
import type { KeyValueStore } from '../store/kv.ts';
import type { LockFence, ReplaceResult, SessionRecords } from './records.ts';

interface Entry {
  value: Buffer;
  expiresAt: number;
}

/**
 * Session records in this process's memory, for a single instance without
 * Redis. Nothing yields between a check and the write that depends on it, so
 * each method is as atomic as Redis's scripts; only a fence is checked in the
 * key-value store (where the refresh locks live) first. Expired records are
 * gone on read and swept every minute.
 */
export class MemorySessionRecords implements SessionRecords {
  private readonly entries = new Map<string, Entry>();
  private readonly locks: KeyValueStore;
  private readonly sweeper: NodeJS.Timeout;
  private readonly now: () => number;

  constructor(locks: KeyValueStore, now: () => number = Date.now) {
    this.locks = locks;
    this.now = now;
    this.sweeper = setInterval(() => this.sweep(), 60_000);
    this.sweeper.unref();
  }

  async get(recordId: string): Promise<Buffer | undefined> {
    return this.live(recordId)?.value;
  }

  async set(recordId: string, value: Buffer, ttlMs: number): Promise<void> {
    this.entries.set(recordId, { value, expiresAt: this.now() + ttlMs });
  }

  async expire(recordId: string, ttlMs: number): Promise<void> {
    const entry = this.live(recordId);
    if (entry) entry.expiresAt = this.now() + ttlMs;
  }

  async replace(recordId: string, value: Buffer, ttlMs: number, fence?: LockFence): Promise<ReplaceResult> {
    if (fence && !(await forSession(this.locks.holdsLock(fence.key, fence.token)))) return 'lost-lock';
    if (!this.live(recordId)) return 'gone';
    this.entries.set(recordId, { value, expiresAt: this.now() + ttlMs });
    return 'ok';
  }

  async remainingMs(recordId: string): Promise<number | undefined> {
    const entry = this.live(recordId);
    return entry ? entry.expiresAt - this.now() : undefined;
  }

  async remove(recordId: string): Promise<boolean> {
    const existed = this.live(recordId) !== undefined;
    this.entries.delete(recordId);
    return existed;
  }

  close(): void {
    clearInterval(this.sweeper);
    this.entries.clear();
  }

  private live(recordId: string): Entry | undefined {
    const entry = this.entries.get(recordId);
    if (entry && entry.expiresAt <= this.now()) {
      this.entries.delete(recordId);
      return undefined;
    }
    return entry;
  }

  private sweep(): void {
    const now = this.now();
    for (const [id, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(id);
  }
}
