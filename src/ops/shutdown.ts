import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { CLOSE_GOING_AWAY, closeFrame } from '../proxy/websocket-close.ts';

/** How often idle keep-alive connections are closed while draining (a busy one becomes idle when its response ends). */
const SWEEP_MS = 100;
/** With close code 1001, "going away": the client should reconnect, to another instance. */
const GOING_AWAY_REASON = 'server shutting down';
/** How long a WebSocket has to close after its close frame before its socket is destroyed. */
const WEBSOCKET_CLOSE_GRACE_MS = 1000;

/**
 * What graceful shutdown needs to know about the running gateway: whether
 * it is draining (readiness answers 503 from the first moment) and which
 * proxied WebSockets are open, so that they can be told to go away (1001)
 * instead of holding the process open until the timeout.
 */
export class ShutdownRegistry {
  private readonly sockets = new Set<Duplex>();
  private drainingSince: number | undefined;

  get draining(): boolean {
    return this.drainingSince !== undefined;
  }

  /** Proxied WebSockets open right now. */
  get openWebSockets(): number {
    return this.sockets.size;
  }

  /**
   * Registers the client side of a proxied WebSocket (the socket the HTTP
   * server handed to the `upgrade` handler), once the upgrade is being
   * proxied. It is forgotten when it closes. A socket registered while
   * draining is told to go away at once.
   */
  track(socket: Duplex): void {
    if (socket.destroyed) return;
    if (this.draining) return goAway(socket);
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  /**
   * Starts the shutdown: not ready from now on, and every WebSocket gets a
   * 1001 close frame. Resolves when they have all closed (or were destroyed
   * after a short grace).
   */
  async begin(): Promise<void> {
    this.drainingSince ??= Date.now();
    const closing = [...this.sockets].map(
      (socket) =>
        new Promise<void>((resolve) => {
          socket.once('close', () => resolve());
          const timer = setTimeout(() => socket.destroy(), WEBSOCKET_CLOSE_GRACE_MS);
          timer.unref();
          socket.once('close', () => clearTimeout(timer));
          goAway(socket);
        }),
    );
    await Promise.all(closing);
  }
}

function goAway(socket: Duplex): void {
  if (socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(closeFrame(CLOSE_GOING_AWAY, GOING_AWAY_REASON));
}

/**
 * Stops accepting connections and lets in-flight requests (and streams)
 * finish, for at most `graceMs`; then closes what is left. Keep-alive
 * connections are closed as soon as they are idle rather than after their
 * keep-alive timeout, and requests that still arrive on them are answered
 * with `Connection: close`.
 */
export function drainServer(server: http.Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    // Before the app's own listener, so that the header is set before any response starts.
    server.prependListener('request', closeAfterResponse);
    const sweep = setInterval(() => server.closeIdleConnections(), SWEEP_MS);
    const force = setTimeout(() => server.closeAllConnections(), graceMs);
    server.close(() => {
      clearInterval(sweep);
      clearTimeout(force);
      server.off('request', closeAfterResponse);
      resolve();
    });
    server.closeIdleConnections();
  });
}

function closeAfterResponse(_req: http.IncomingMessage, res: http.ServerResponse): void {
  if (!res.headersSent) res.setHeader('Connection', 'close');
}

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 2, SIGTERM: 15 };

/** A second signal exits at once with the shell's convention, 128 + the signal number (130 for a second Ctrl-C). */
export function exitCodeForSignal(signal: NodeJS.Signals): number {
  return 128 + (SIGNAL_NUMBERS[signal] ?? 1);
}
