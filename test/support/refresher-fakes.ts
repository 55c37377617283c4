import type { SessionData } from 'express-session';
import type { ExchangeTarget, TokenSet } from '../../src/oidc/token-set.ts';
import { parseHandle } from '../../src/session/handles.ts';
import type { LockFence, ReplaceResult } from '../../src/session/records.ts';
import type { SessionOwner } from '../../src/session/session-index.ts';
import type { FencedSessions, RefreshGrant, RefreshLocks, SessionTerminator } from '../../src/tokens/refresher-deps.ts';

/*
 * In-memory stand-ins for what TokenRefresher talks to, shared by any number
 * of refreshers the way instances share Redis and the IdP. They keep the
 * contracts of the real ones (a lock owned by its token, a replace that never
 * recreates a session and honours the fence) and count what was asked of them.
 */

/** Locks and markers with the store's expiry semantics, on the real clock. */
export class FakeLocks implements RefreshLocks {
  private readonly entries = new Map<string, { value: string; expiresAt: number }>();
  private issued = 0;
  acquireCalls = 0;
  /** How often someone found a lock held and waited. */
  heldChecks = 0;
  readonly markers: Array<{ key: string; value: string; ttlMs: number }> = [];

  async acquireLock(key: string, ttlMs: number): Promise<string | undefined> {
    this.acquireCalls += 1;
    if (this.live(key)) return undefined;
    const token = `token-${++this.issued}`;
    this.entries.set(key, { value: token, expiresAt: Date.now() + ttlMs });
    return token;
  }

  async releaseLock(key: string, token: string): Promise<void> {
    if (this.live(key)?.value === token) this.entries.delete(key);
  }

  async isLocked(key: string): Promise<boolean> {
    const held = this.live(key) !== undefined;
    if (held) this.heldChecks += 1;
    return held;
  }

  async get(key: string): Promise<string | undefined> {
    return this.live(key)?.value;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.markers.push({ key, value, ttlMs });
    this.entries.set(key, { value, expiresAt: Date.now() + ttlMs });
  }

  holds(fence: LockFence): boolean {
    return this.live(fence.key)?.value === fence.token;
  }

  /** The lock's TTL runs out (a refresh slower than the lock). */
  expire(key: string): void {
    this.entries.delete(key);
  }

  private live(key: string): { value: string } | undefined {
    const entry = this.entries.get(key);
    return entry && entry.expiresAt > Date.now() ? entry : undefined;
  }
}

/** Session records by store id; reads hand out copies, as a store that serialises would. */
export class FakeSessions implements FencedSessions {
  private readonly records = new Map<string, SessionData>();
  private readonly locks: FakeLocks;
  writes = 0;

  constructor(locks: FakeLocks) {
    this.locks = locks;
  }

  async load(handle: string): Promise<SessionData | undefined> {
    const data = this.records.get(storeIdOf(handle));
    return data && structuredClone(data);
  }

  // Same order as the Redis script: the fence first, then the record's existence.
  async replace(handle: string, data: SessionData, fence: LockFence): Promise<ReplaceResult> {
    if (!this.locks.holds(fence)) return 'lost-lock';
    const storeId = storeIdOf(handle);
    if (!this.records.has(storeId)) return 'gone';
    this.writes += 1;
    this.records.set(storeId, structuredClone(data));
    return 'ok';
  }

  put(handle: string, data: SessionData): void {
    this.records.set(storeIdOf(handle), structuredClone(data));
  }

  stored(handle: string): SessionData | undefined {
    return this.records.get(storeIdOf(handle));
  }

  destroy(storeId: string): void {
    this.records.delete(storeId);
  }
}

export class FakeEnder implements SessionTerminator {
  private readonly sessions: FakeSessions;
  readonly ended: Array<{ storeId: string; owner: SessionOwner }> = [];

  constructor(sessions: FakeSessions) {
    this.sessions = sessions;
  }

  async end(storeId: string, owner: SessionOwner): Promise<boolean> {
    this.ended.push({ storeId, owner });
    this.sessions.destroy(storeId);
    return true;
  }
}

/**
 * An IdP whose answers each test scripts; `calls` holds the refresh tokens of
 * plain refreshes, `resourceCalls` and `exchangeCalls` what the route-token grants sent.
 */
export class FakeGrant implements RefreshGrant {
  readonly calls: string[] = [];
  readonly resourceCalls: Array<{ refreshToken: string; resource: string }> = [];
  readonly exchangeCalls: Array<{ subjectToken: string; target: ExchangeTarget }> = [];
  answer: (refreshToken: string) => Promise<TokenSet> = () => Promise.reject(new Error('no answer scripted'));
  resourceAnswer: (refreshToken: string, resource: string) => Promise<TokenSet> = () => Promise.reject(new Error('no answer scripted'));
  exchangeAnswer: (subjectToken: string, target: ExchangeTarget) => Promise<TokenSet> = () => Promise.reject(new Error('no answer scripted'));

  refresh(refreshToken: string, resource?: string): Promise<TokenSet> {
    if (resource !== undefined) {
      this.resourceCalls.push({ refreshToken, resource });
      return this.resourceAnswer(refreshToken, resource);
    }
    this.calls.push(refreshToken);
    return this.answer(refreshToken);
  }

  exchange(subjectToken: string, target: ExchangeTarget): Promise<TokenSet> {
    this.exchangeCalls.push({ subjectToken, target });
    return this.exchangeAnswer(subjectToken, target);
  }

  metadata(): { issuer: string } {
    return { issuer: 'https://idp.example' };
  }
}

export function storeIdOf(handle: string): string {
  const parts = parseHandle(handle);
  if (!parts) throw new Error(`not a session id: ${handle}`);
  return parts.storeId;
}

/** A promise and the functions that settle it, so a test decides when and how the IdP answers. */
export function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (reason: unknown) => void } {
  let resolve: (value: T) => void = () => undefined;
  let reject: (reason: unknown) => void = () => undefined;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets pending promise chains and I/O callbacks run until `condition` holds; fails rather than hangs. */
export async function until(condition: () => boolean, turns = 1000): Promise<void> {
  for (let i = 0; i < turns; i += 1) {
    if (condition()) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  throw new Error('condition never held');
}
