import type { IncomingMessage, ServerResponse } from 'node:http';
import { problems } from '../http/problem-catalogue.ts';
import type { HttpProblem } from '../http/problem.ts';

/**
 * How a request's body reaches the upstream. The gateway always frames the
 * upstream request itself, from what Node's parser read, never from the
 * browser's framing headers:
 * - `none`: no body (a `Content-Length: 0` is kept as such).
 * - `buffered`: read completely before an upstream connection is taken, sent
 *   with its exact `Content-Length`.
 * - `stream`: piped as it arrives, with the declared `Content-Length`, or
 *   chunked when the browser sent it chunked (`length` undefined); `head` holds
 *   what was already read while deciding.
 */
export type RequestBody = { kind: 'none'; emptyLength: boolean } | { kind: 'buffered'; data: Buffer } | { kind: 'stream'; length: number | undefined; head: Buffer[] };

const NO_BODY: RequestBody = { kind: 'none', emptyLength: false };
const EMPTY_BODY: RequestBody = { kind: 'none', emptyLength: true };

/** How the browser framed its body, or the problem when the gateway could not frame it unambiguously upstream. */
export type Framing = { length: number | undefined; chunked: boolean };

/**
 * Node's parser already refuses conflicting `Content-Length` values and
 * `Content-Length` next to `Transfer-Encoding`; this refuses what it lets
 * through but an upstream might read differently: any transfer coding other
 * than plain `chunked`.
 */
export function requestFraming(req: IncomingMessage): Framing | HttpProblem {
  const te = req.headers['transfer-encoding'];
  const cl = req.headers['content-length'];
  if (te !== undefined) {
    if (cl !== undefined || te.trim().toLowerCase() !== 'chunked') {
      return problems.badFraming('mixed_framing');
    }
    return { length: undefined, chunked: true };
  }
  if (cl === undefined) return { length: undefined, chunked: false };
  const length = /^\d+$/.test(cl) ? Number(cl) : NaN;
  if (!Number.isSafeInteger(length)) return problems.badFraming('bad_content_length');
  return { length, chunked: false };
}

/** The body of a request that has none (most API calls): known at once, with nothing to wait for. */
export function bodyless(framing: Framing): RequestBody | undefined {
  if (framing.chunked) return undefined;
  if (framing.length === undefined) return NO_BODY;
  return framing.length === 0 ? EMPTY_BODY : undefined;
}

/**
 * Reads a small body completely (so that a slow client holds no upstream
 * connection while it trickles) and leaves a large one to stream. Sends
 * `100 Continue` first when the browser asked for it: the request has passed
 * every check by now. Resolves undefined when the browser went away.
 */
export function receiveBody(req: IncomingMessage, res: ServerResponse, framing: Framing, bufferBytes: number, expectsContinue: boolean): Promise<RequestBody | undefined> {
  if (expectsContinue && !res.headersSent) res.writeContinue();
  if (framing.length !== undefined && framing.length > bufferBytes) return Promise.resolve({ kind: 'stream', length: framing.length, head: [] });
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (body: RequestBody | undefined): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
      resolve(body);
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      size += chunk.length;
      // Only a chunked body can grow past the buffer (a declared length is checked above): stream the rest.
      if (size > bufferBytes) {
        req.pause();
        finish({ kind: 'stream', length: undefined, head: chunks });
      }
    };
    const onEnd = (): void => finish({ kind: 'buffered', data: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size) });
    const onClose = (): void => {
      if (!req.complete) finish(undefined);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('close', onClose);
  });
}

/**
 * Streamed uploads in progress per client address: a client that opens many
 * slow uploads would otherwise hold every upstream connection of a route.
 */
export class UploadSlots {
  private readonly inUse = new Map<string, number>();
  private readonly perClient: number;

  constructor(perClient: number) {
    this.perClient = perClient;
  }

  /** A release function, or undefined when this client already has its share. */
  take(client: string): (() => void) | undefined {
    const count = this.inUse.get(client) ?? 0;
    if (count >= this.perClient) return undefined;
    this.inUse.set(client, count + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.inUse.get(client) ?? 1) - 1;
      if (left === 0) this.inUse.delete(client);
      else this.inUse.set(client, left);
    };
  }
}
