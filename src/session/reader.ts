import type { IncomingMessage } from 'node:http';
import { unsign } from 'cookie-signature';
import type { GatewayConfig } from '../config/types.ts';
import { readCookie } from '../http/cookies.ts';
import { parseHandle } from './handles.ts';
import { INVALIDATE_ALL, type InvalidationBus } from './invalidation.ts';
import type { SessionRepository } from './repository.ts';
import { SessionCache } from './session-cache.ts';
import type { SessionState } from './types.ts';

/** How often, at most, one instance slides a session's idle timeout from the proxy path. */
const MAX_TOUCH_INTERVAL_MS = 60_000;
/** How long a decrypted session may be served from memory before it is read from the store again. */
const MAX_CACHE_TTL_MS = 5_000;
const MAX_TRACKED_TOUCHES = 100_000;

export interface LoadedSession {
  handle: string;
  /** The handle's store id, parsed once when the session was read. */
  storeId: string;
  data: SessionState;
}

/**
 * Loads the session for the proxy path (and WebSocket upgrades, where
 * express-session does not run) without express-session's per-request
 * bookkeeping: verify the cookie signature, one store read, one decrypt; the
 * caller then `touch`es the session once the request turned out to be
 * activity (at most once a minute per session, off the response path). Recently
 * read sessions are served from memory while the invalidation channel vouches
 * for them (any change to a session on any instance drops it at once); while
 * that channel is down every request reads the store.
 */
export class SessionReader {
  private readonly cookieName: string;
  private readonly secrets: readonly string[];
  private readonly sessions: SessionRepository;
  private readonly lastTouch = new Map<string, number>();
  /** A tenth of the idle timeout (at most a minute), so throttling never lets an active session idle out. */
  private readonly touchIntervalMs: number;
  private readonly cache: SessionCache;
  private readonly invalidation: InvalidationBus;

  constructor(config: GatewayConfig, sessions: SessionRepository, invalidation: InvalidationBus) {
    this.cookieName = config.cookieName;
    this.secrets = config.sessionSecrets;
    this.sessions = sessions;
    this.touchIntervalMs = Math.min(MAX_TOUCH_INTERVAL_MS, (config.sessionIdleTimeoutSec * 1000) / 10);
    // Never longer than a quarter of the idle timeout: an idle expiry in the store sends no invalidation.
    this.cache = new SessionCache(Math.min(MAX_CACHE_TTL_MS, (config.sessionIdleTimeoutSec * 1000) / 4));
    this.invalidation = invalidation;
    invalidation.onInvalidate((storeId) => (storeId === INVALIDATE_ALL ? this.cache.clear(Date.now()) : this.cache.invalidate(storeId, Date.now())));
  }

  /** The signed-in session, or undefined when there is none or the cookie is not genuine. Rejects when the store fails. */
  async load(req: IncomingMessage): Promise<LoadedSession | undefined> {
    const cookie = readCookie(req, this.cookieName);
    if (cookie === undefined) return undefined;
    const cacheable = this.invalidation.healthy();
    const startedAt = Date.now();
    if (cacheable) {
      const hit = this.cache.get(cookie, startedAt);
      if (hit) return hit;
    }
    const handle = this.unsign(cookie);
    const parts = handle === undefined ? undefined : parseHandle(handle);
    if (handle === undefined || !parts) return undefined;
    const data = await this.sessions.load(handle);
    if (!data) return undefined;
    if (cacheable) this.cache.set(cookie, handle, parts.storeId, data, startedAt, Date.now());
    return { handle, storeId: parts.storeId, data };
  }

  /**
   * Slides the session's idle timeout: the request was activity. Not part of
   * `load`, because a request that fails (a refresh the IdP could not answer)
   * must not keep a session alive.
   */
  touch(session: LoadedSession): void {
    // The store id the read already parsed: this runs on every proxied request.
    const { handle, storeId, data } = session;
    const now = Date.now();
    const last = this.lastTouch.get(storeId);
    if (last !== undefined && now - last < this.touchIntervalMs) return;
    if (this.lastTouch.size >= MAX_TRACKED_TOUCHES) this.lastTouch.clear();
    this.lastTouch.set(storeId, now);
    // A failed touch only shortens the idle window; the read that needed the session already succeeded.
    this.sessions.touch(handle, data).catch(() => undefined);
  }

  /**
   * express-session's cookie format (`s:` + cookie-signature), verified by the
   * very library express-session uses, so that the proxy path can never accept
   * a cookie that `/auth` would refuse or the reverse: any configured secret
   * verifies, the first one signs.
   */
  private unsign(cookie: string): string | undefined {
    if (!cookie.startsWith('s:')) return undefined;
    const signed = cookie.slice(2);
    for (const secret of this.secrets) {
      const value = unsign(signed, secret);
      if (value !== false) return value;
    }
    return undefined;
  }
}
