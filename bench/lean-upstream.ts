import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What every request gets: a small JSON document, like a typical API read. */
const BODY = Buffer.from(JSON.stringify({ id: 4711, name: 'Blue widget', price: { amount: 1999, currency: 'EUR' }, tags: ['blue', 'widget'], inStock: true }));

export interface LeanUpstream {
  /** http://127.0.0.1:<port> */
  url: string;
  close(): Promise<void>;
}

/**
 * The upstream of every scenario and, hit directly, the ceiling. Unlike the
 * test suite's echo server it records nothing and hashes nothing: it must not
 * be what limits the numbers.
 */
export async function startLeanUpstream(): Promise<LeanUpstream> {
  const server: Server = createServer((req, res) => {
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
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
