import http, { STATUS_CODES, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { RouteConfig } from '../config/types.ts';
import { problems } from '../http/problem-catalogue.ts';
import { writeRawProblem } from '../http/problem.ts';
import { isGatewayCookie } from './gateway-cookies.ts';
import { upstreamTlsOptions } from './tls.ts';
import { closeFrame } from './websocket-close.ts';

/**
 * Request headers that would let the browser frame the upstream handshake
 * itself: a GET upgrade has no body, and a `Content-Length` passed on would
 * make the upstream read the first WebSocket frames as one.
 */
const NOT_ON_HANDSHAKE = new Set(['content-length', 'transfer-encoding', 'expect']);
/** Response headers about the upstream hop; a 101 has no body to frame either. */
const HOP_BY_HOP_ON_SWITCH = new Set(['keep-alive', 'proxy-connection', 'proxy-authenticate', 'trailer', 'te', 'transfer-encoding', 'content-length']);
/** A refused handshake is re-framed by the gateway (sent, then the connection closed). */
const HOP_BY_HOP_ON_REFUSAL = new Set(['connection', 'upgrade', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'trailer', 'te', 'transfer-encoding']);
/** How long a browser has to answer the gateway's close frame before its socket is destroyed. */
const CLOSE_GRACE_MS = 1000;

/** A WebSocket the gateway is proxying, once the upstream switched protocols. */
export interface ProxiedWebSocket {
  /** The browser's side. */
  readonly client: Duplex;
  /** Ends it from the gateway's side: a close frame with `code` to the browser, the upstream connection dropped. */
  close(code: number, reason: string): void;
}

export interface UpgradeForward {
  /** Headers already prepared for the upstream (`prepareUpstreamHeaders`), `url` the upstream path. */
  req: IncomingMessage;
  client: Duplex;
  /** Bytes the browser sent after its handshake, before the upgrade was handled. */
  head: Buffer;
  route: RouteConfig;
  /** The gateway's own cookie names, which an upstream's handshake answer must not set. */
  gatewayCookies: readonly string[];
  logger: Logger;
  /** Called once the WebSocket is open through to the upstream. */
  onOpen?: (socket: ProxiedWebSocket) => void;
}

class HandshakeTimeoutError extends Error {
  readonly code = 'UPSTREAM_TIMEOUT';
}

/**
 * Forwards a WebSocket handshake to the route's upstream on a connection of
 * its own, then relays bytes both ways. The upstream's answer is rewritten,
 * not copied raw: its `Set-Cookie` for the gateway's cookies and its hop-by-hop
 * headers are dropped, on a 101 and on a refusal alike. The upstream has
 * `timeoutMs` to answer the handshake (504), and an unreachable one is 502.
 */
export function forwardUpgrade(forward: UpgradeForward): void {
  const { req, client, route, logger } = forward;
  const target = new URL(req.url ?? '/', route.target);
  const secure = target.protocol === 'https:';
  const request = (secure ? https : http).request(target, {
    method: 'GET',
    headers: handshakeHeaders(req.headers, target.host),
    agent: false,
    ...(secure ? upstreamTlsOptions(route) : {}),
  });
  let answered = false;
  const timer = setTimeout(() => request.destroy(new HandshakeTimeoutError('upstream handshake timed out')), route.timeoutMs);
  const abandon = (): void => {
    clearTimeout(timer);
    request.destroy();
  };
  client.once('close', abandon);

  request.on('error', (err: Error & { code?: string }) => {
    clearTimeout(timer);
    client.off('close', abandon);
    if (answered) return void client.destroy();
    answered = true;
    const timedOut = err instanceof HandshakeTimeoutError;
    logger.warn({ route: route.prefix, reason: err.code ?? err.name }, timedOut ? 'upstream WebSocket handshake timed out' : 'upstream WebSocket handshake failed');
    writeRawProblem(client, timedOut ? problems.upstreamHandshakeTimeout(route.timeoutMs) : problems.upstreamUnavailable());
  });

  request.on('response', (res) => {
    answered = true;
    if (client.destroyed || !client.writable) {
      res.resume();
      return abandon();
    }
    // The upstream refused to switch protocols: its answer goes to the browser, close-delimited.
    const status = res.statusCode ?? 502;
    client.write(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n${headerLines(res.rawHeaders, HOP_BY_HOP_ON_REFUSAL, forward)}Connection: close\r\n\r\n`, 'latin1');
    res.on('data', (chunk: Buffer) => {
      if (!client.write(chunk)) res.pause();
    });
    client.on('drain', () => res.resume());
    res.once('error', () => client.destroy());
    res.once('close', () => {
      clearTimeout(timer);
      // Cut short (the upstream went away, or took longer than timeoutMs): the browser must not take it for the whole answer.
      if (res.complete) client.end();
      else client.destroy();
    });
  });

  request.on('upgrade', (res, upstream, upstreamHead) => {
    answered = true;
    clearTimeout(timer);
    client.off('close', abandon);
    if (client.destroyed || !client.writable) return void upstream.destroy();
    client.write(`HTTP/1.1 101 Switching Protocols\r\n${headerLines(res.rawHeaders, HOP_BY_HOP_ON_SWITCH, forward)}\r\n`, 'latin1');
    const socket = relay(client, upstream, forward.head, upstreamHead);
    forward.onOpen?.(socket);
  });

  request.end();
}

function handshakeHeaders(prepared: IncomingHttpHeaders, host: string): IncomingHttpHeaders {
  const headers: IncomingHttpHeaders = {};
  for (const name in prepared) if (!NOT_ON_HANDSHAKE.has(name)) headers[name] = prepared[name];
  headers.host = host;
  // Whatever else the browser listed there was dropped already; the handshake needs exactly this.
  headers.connection = 'Upgrade';
  return headers;
}

/** The upstream's response headers as they came (names, order, repeats), minus what must not reach the browser. */
function headerLines(raw: readonly string[], dropped: ReadonlySet<string>, forward: UpgradeForward): string {
  let lines = '';
  let refusedCookies = 0;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    const lower = name.toLowerCase();
    if (dropped.has(lower)) continue;
    if (lower === 'set-cookie' && isGatewayCookie(value, forward.gatewayCookies)) {
      refusedCookies += 1;
      continue;
    }
    lines += `${name}: ${value}\r\n`;
  }
  if (refusedCookies > 0) forward.logger.warn({ route: forward.route.prefix }, "upstream tried to set the gateway's own cookie on a WebSocket handshake; dropped");
  return lines;
}

/**
 * Relays bytes both ways with back-pressure. Nothing is written to the
 * browser after the gateway's own close frame (the upstream is dropped at
 * that moment), and either side closing closes the other.
 */
function relay(client: Duplex, upstream: Socket, clientHead: Buffer, upstreamHead: Buffer): ProxiedWebSocket {
  upstream.setNoDelay(true);
  upstream.setTimeout(0);
  // Node hands upgrades a net.Socket; the Duplex type is only the event's declared type.
  (client as Socket).setTimeout(0);
  if (upstreamHead.length > 0) client.write(upstreamHead);
  if (clientHead.length > 0) upstream.write(clientHead);
  pump(upstream, client);
  pump(client, upstream);
  client.on('error', () => client.destroy());
  upstream.on('error', () => upstream.destroy());
  client.once('close', () => upstream.destroy());
  // The upstream is gone: finish what was written to the browser, then close (the browser's own close ends the rest).
  upstream.once('close', () => {
    if (!client.writableEnded) client.end();
    closeAfterGrace(client);
  });
  return {
    client,
    close(code, reason) {
      upstream.destroy();
      if (!client.destroyed && !client.writableEnded) client.end(closeFrame(code, reason));
      closeAfterGrace(client);
    },
  };
}

function pump(from: Duplex, to: Duplex): void {
  from.on('data', (chunk: Buffer) => {
    // After the gateway's close frame (or shutdown's), nothing more may reach that side.
    if (to.writableEnded || to.destroyed) return;
    if (!to.write(chunk)) from.pause();
  });
  to.on('drain', () => from.resume());
  from.once('end', () => {
    if (!to.writableEnded) to.end();
  });
}

function closeAfterGrace(socket: Duplex): void {
  if (socket.destroyed) return;
  const timer = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}
