import type { Logger } from 'pino';
import { parseHandle } from '../session/handles.ts';
import { INVALIDATE_ALL, type InvalidationBus } from '../session/invalidation.ts';
import { CLOSE_POLICY_VIOLATION } from './websocket-close.ts';
import type { ProxiedWebSocket } from './websocket-forward.ts';

/** Re-checked a little after the store's expiry, so that the record is surely gone when it is read. */
const EXPIRY_MARGIN_MS = 25;
/** When the store cannot answer, the session is neither confirmed nor ended: ask again after this. */
const RETRY_MS = 5_000;
/** setTimeout's longest delay; a session that lives longer is simply re-checked then. */
const MAX_DELAY_MS = 2 ** 31 - 1;
const SESSION_ENDED_REASON = 'session ended';

export interface SessionWebSocketsDeps {
  /** Tells, on every instance, when a session changed or ended (or that any may have). */
  invalidation: Pick<InvalidationBus, 'onInvalidate'>;
  /**
   * Until when the session lives if nothing touches it again (epoch ms), as
   * the store says now (never a cache); undefined once it has ended. Rejects
   * when the store cannot answer.
   */
  liveUntil(handle: string): Promise<number | undefined>;
  logger: Logger;
}

interface Entry {
  handle: string;
  sockets: Set<ProxiedWebSocket>;
  timer: NodeJS.Timeout | undefined;
  checking: boolean;
  /** Something happened to the session while it was being checked: check again once that read is done. */
  again: boolean;
}

/**
 * The proxied WebSockets of each session, so that they end with it: closed
 * with 1008 (policy violation) when the session is logged out or ended on any
 * instance, expires (idle or absolute), or is dropped because the IdP refused
 * its refresh. Two things trigger a check of a session against the store:
 * an invalidation for it (or for all sessions), and one timer per session set
 * to the moment the store would let it expire — re-armed when activity has
 * slid that moment. Nothing polls.
 */
export class SessionWebSockets {
  private readonly deps: SessionWebSocketsDeps;
  private readonly entries = new Map<string, Entry>();
  private closed = false;

  constructor(deps: SessionWebSocketsDeps) {
    this.deps = deps;
    deps.invalidation.onInvalidate((storeId) => {
      if (storeId === INVALIDATE_ALL) for (const id of this.entries.keys()) void this.check(id);
      else if (this.entries.has(storeId)) void this.check(storeId);
    });
  }

  /**
   * Ties an open WebSocket to the session it was authorised by. The session
   * is checked at once: it may have ended while the handshake was under way,
   * and the check arms the expiry timer.
   */
  track(handle: string, socket: ProxiedWebSocket): void {
    const storeId = parseHandle(handle)?.storeId;
    if (storeId === undefined || this.closed || socket.client.destroyed) return;
    let entry = this.entries.get(storeId);
    if (!entry) this.entries.set(storeId, (entry = { handle, sockets: new Set(), timer: undefined, checking: false, again: false }));
    entry.sockets.add(socket);
    socket.client.once('close', () => this.forget(storeId, socket));
    void this.check(storeId);
  }

  /** Stops the timers (the sockets themselves are closed by the shutdown). */
  close(): void {
    this.closed = true;
    for (const entry of this.entries.values()) clearTimeout(entry.timer);
    this.entries.clear();
  }

  private forget(storeId: string, socket: ProxiedWebSocket): void {
    const entry = this.entries.get(storeId);
    if (!entry) return;
    entry.sockets.delete(socket);
    if (entry.sockets.size > 0) return;
    clearTimeout(entry.timer);
    this.entries.delete(storeId);
  }

  private async check(storeId: string): Promise<void> {
    const entry = this.entries.get(storeId);
    if (!entry) return;
    if (entry.checking) {
      entry.again = true;
      return;
    }
    entry.checking = true;
    entry.again = false;
    clearTimeout(entry.timer);
    let until: number | undefined;
    let unknown = false;
    try {
      until = await this.deps.liveUntil(entry.handle);
    } catch {
      unknown = true;
    }
    entry.checking = false;
    if (this.entries.get(storeId) !== entry) return;
    // A read that started before the latest change may have seen the session as it was: read again.
    if (entry.again) return this.check(storeId);
    if (!unknown && until === undefined) return this.end(storeId, entry);
    const delay = unknown ? RETRY_MS : (until as number) - Date.now() + EXPIRY_MARGIN_MS;
    entry.timer = setTimeout(() => void this.check(storeId), Math.min(MAX_DELAY_MS, Math.max(0, delay)));
    // The sockets keep the process alive, not their timers.
    entry.timer.unref();
  }

  private end(storeId: string, entry: Entry): void {
    this.entries.delete(storeId);
    clearTimeout(entry.timer);
    for (const socket of entry.sockets) socket.close(CLOSE_POLICY_VIOLATION, SESSION_ENDED_REASON);
    this.deps.logger.info({ event: 'websocket_session_ended', sockets: entry.sockets.size }, 'session ended; its WebSockets were closed (1008)');
  }
}
