import { connect, type Socket } from 'node:net';

/**
 * Exact bytes to a server and its answers parsed by hand: HTTP clients (fetch,
 * supertest, http.request) normalise away exactly the framing and header tricks
 * that request-smuggling and header-hygiene tests need to send.
 */

/** One HTTP/1.x response as the server wrote it. */
export type RawResponse = {
  status: number;
  /** Status line and header lines, as received. */
  head: string;
  /** Lower-cased names; repeated headers joined with ', ' (`set-cookie` with '\n'). */
  headers: Record<string, string>;
  /** The body, de-chunked when it was chunked. */
  body: Buffer;
  /** The body as UTF-8. */
  text: string;
};

export type ReadOptions = {
  /** Give up (reject) after this long. Default 5000 ms. */
  timeoutMs?: number;
  /** The response answers a HEAD request: it has no body whatever its headers say. */
  head?: boolean;
};

type Parsed = { response: RawResponse; consumed: number };

const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');

/**
 * Parses one response at the start of `data`. Returns undefined while it is
 * incomplete; a body without Content-Length or chunking is complete only once
 * the connection has `ended`.
 */
export function parseResponse(data: Buffer, options: { head?: boolean; ended?: boolean } = {}): Parsed | undefined {
  const headEnd = data.indexOf(HEAD_END);
  if (headEnd === -1) return undefined;
  const head = data.subarray(0, headEnd).toString('latin1');
  const [statusLine = '', ...lines] = head.split('\r\n');
  const match = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(statusLine);
  if (!match) throw new Error(`not an HTTP/1.x status line: ${JSON.stringify(statusLine.slice(0, 200))}`);
  const status = Number(match[1]);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon < 1) throw new Error(`malformed header line: ${JSON.stringify(line.slice(0, 200))}`);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const previous = headers[name];
    headers[name] = previous === undefined ? value : `${previous}${name === 'set-cookie' ? '\n' : ', '}${value}`;
  }
  const bodyStart = headEnd + HEAD_END.length;
  const done = (body: Buffer, end: number): Parsed => ({
    response: { status, head, headers, body, text: body.toString('utf8') },
    consumed: end,
  });

  if (options.head === true || (status >= 100 && status < 200) || status === 204 || status === 304) return done(Buffer.alloc(0), bodyStart);
  if (/(?:^|,)\s*chunked\s*$/i.test(headers['transfer-encoding'] ?? '')) {
    const chunks: Buffer[] = [];
    let at = bodyStart;
    for (;;) {
      const lineEnd = data.indexOf(CRLF, at);
      if (lineEnd === -1) return undefined;
      const size = Number.parseInt(data.subarray(at, lineEnd).toString('latin1').split(';')[0] ?? '', 16);
      if (!Number.isFinite(size) || size < 0) throw new Error('malformed chunk size in response');
      at = lineEnd + CRLF.length;
      if (size === 0) {
        // Trailer lines, if any, then the empty line that ends the message.
        for (;;) {
          const trailerEnd = data.indexOf(CRLF, at);
          if (trailerEnd === -1) return undefined;
          const empty = trailerEnd === at;
          at = trailerEnd + CRLF.length;
          if (empty) return done(Buffer.concat(chunks), at);
        }
      }
      if (data.length < at + size + CRLF.length) return undefined;
      chunks.push(data.subarray(at, at + size));
      at += size + CRLF.length;
    }
  }
  const length = headers['content-length'];
  if (length !== undefined) {
    const n = Number(length);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`bad content-length in response: ${length}`);
    return data.length >= bodyStart + n ? done(Buffer.from(data.subarray(bodyStart, bodyStart + n)), bodyStart + n) : undefined;
  }
  return options.ended === true ? done(Buffer.from(data.subarray(bodyStart)), data.length) : undefined;
}

/** Every complete response in `data`, in order (pipelined answers on one connection). */
export function parseResponses(data: Buffer, options: { ended?: boolean } = {}): RawResponse[] {
  const out: RawResponse[] = [];
  let rest = data;
  for (;;) {
    const parsed = parseResponse(rest, options);
    if (parsed === undefined) return out;
    out.push(parsed.response);
    rest = rest.subarray(parsed.consumed);
    if (rest.length === 0) return out;
  }
}

/** A TCP connection to an HTTP server that writes exact bytes and reads responses one by one. */
export class RawConnection {
  readonly #socket: Socket;
  #buffer: Buffer = Buffer.alloc(0);
  #ended = false;
  #wake: (() => void) | undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
      this.#wake?.();
    });
    // A reset or EPIPE after the server answered and closed is an expected ending here.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.#ended = true;
      this.#wake?.();
    });
  }

  /** Connects to the host and port of `baseUrl` (e.g. the gateway's URL). */
  static open(baseUrl: string, timeoutMs = 5000): Promise<RawConnection> {
    const url = new URL(baseUrl);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`could not connect to ${url.host} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', reject);
        resolve(new RawConnection(socket));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /** True once the server closed the connection (or this side destroyed it). */
  get ended(): boolean {
    return this.#ended;
  }

  /** Everything received and not yet consumed by `readResponse`. */
  get received(): Buffer {
    return this.#buffer;
  }

  /** Writes exact bytes; a no-op once the connection is gone. */
  write(data: string | Buffer): void {
    if (this.#socket.destroyed || !this.#socket.writable) return;
    this.#socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** The next complete response; rejects when the connection closes first or `timeoutMs` passes. */
  async readResponse(options: ReadOptions = {}): Promise<RawResponse> {
    const timeoutMs = options.timeoutMs ?? 5000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const parsed = parseResponse(this.#buffer, { head: options.head === true, ended: this.#ended });
      if (parsed !== undefined) {
        this.#buffer = this.#buffer.subarray(parsed.consumed);
        return parsed.response;
      }
      if (this.#ended) throw new Error(`connection closed before a complete response; received: ${JSON.stringify(this.#buffer.toString('latin1').slice(0, 300))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no complete response within ${timeoutMs} ms; received: ${JSON.stringify(this.#buffer.toString('latin1').slice(0, 300))}`);
      await this.#next(left);
    }
  }

  /** Resolves true when the server closes the connection within `timeoutMs`, else false. */
  async waitClosed(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#ended) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await this.#next(left);
    }
    return true;
  }

  /** Closes the connection from this side (idempotent). */
  close(): void {
    this.#socket.destroy();
  }

  /** Waits for more data, the close, or `ms`, whichever comes first (one reader at a time). */
  #next(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#wake = (): void => {
        this.#wake = undefined;
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

/** Opens a connection, writes `request`, reads one response and closes the connection. */
export async function rawExchange(baseUrl: string, request: string | Buffer, options: ReadOptions = {}): Promise<RawResponse> {
  const conn = await RawConnection.open(baseUrl);
  try {
    conn.write(request);
    return await conn.readResponse(options);
  } finally {
    conn.close();
  }
}

/** `data` in chunked transfer coding, as `pieces` chunks plus the last chunk. */
export function chunked(data: string, pieces = 2): string {
  const size = Math.max(1, Math.ceil(data.length / pieces));
  let out = '';
  for (let at = 0; at < data.length; at += size) {
    const part = data.slice(at, at + size);
    out += `${Buffer.byteLength(part, 'latin1').toString(16)}\r\n${part}\r\n`;
  }
  return `${out}0\r\n\r\n`;
}

/**
 * Polls `condition` (cheaply, every 20 ms) until it holds or `timeoutMs` passes;
 * resolves whether it held. For state that another server's event handlers update.
 */
export async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}
