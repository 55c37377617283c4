import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';

/**
 * A request body that streams: what was already read, then the rest as it
 * arrives. A browser that stops mid-body makes the iteration over `req`
 * reject (premature close), which aborts the upstream request: the upstream
 * never takes the truncated stream for the whole body (a chunked one would
 * otherwise get its final chunk).
 */
export function streamedBody(req: IncomingMessage, head: readonly Buffer[]): Readable {
  return Readable.from(chunks(req, head), { objectMode: false });
}

async function* chunks(req: IncomingMessage, head: readonly Buffer[]): AsyncGenerator<Buffer> {
  for (const chunk of head) yield chunk;
  for await (const chunk of req) yield chunk as Buffer;
}
