import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What every request gets: a small JSON document, like a typical API read. */
const BODY = Buffer.from(JSON.stringify({ id: 4711, name: 'Blue widget', price: { amount: 1999, currency: 'EUR' }, tags: ['blue', 'widget'], inStock: true }));

export interface LeanUpstream {
  /** http://127.0.0.1:<port> */
  url: string;
  /** The headers of the next request that arrives, to verify what a proxy under test sends (never during a load run). */
  nextRequestHeaders(timeoutMs: number): Promise<IncomingHttpHeaders>;
  close(): Promise<void>;
}

/**
 * The upstream of every scenario and, hit directly, the ceiling. Unlike the
 * test suite's echo server it records nothing and hashes nothing: it must not
 * be what limits the numbers.
 */
export async function startLeanUpstream(): Promise<LeanUpstream> {
  // One test per request while nobody waits: nothing measurable.
  let waiter: ((headers: IncomingHttpHeaders) => void) | undefined;
  const server: Server = createServer((req, res) => {
    if (waiter) {
      waiter(req.headers);
      waiter = undefined;
    }
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length });
    res.end(BODY);
  });
  // Longer than any pause between runs: a keep-alive socket the server closes while the proxy's
  // agent reuses it is a 502 that would be the benchmark's fault, not the proxy's.
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    nextRequestHeaders(timeoutMs) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiter = undefined;
          reject(new Error(`the upstream saw no request within ${timeoutMs} ms`));
        }, timeoutMs);
        waiter = (headers) => {
          clearTimeout(timer);
          resolve(headers);
        };
      });
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
