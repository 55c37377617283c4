/**
 * Scenario 2 of `npm run bench`: http-proxy-middleware alone in front of the
 * upstream, with the same keep-alive agent settings as the gateway's routes
 * and nothing else (no express, no session, no auth). The floor for any Node
 * gateway built on it. Runs as a child process of the benchmark so that its
 * RSS and CPU time are its own; prints `{"port":N}` once it listens.
 *
 *   BENCH_TARGET=http://127.0.0.1:PORT node bench/bare-proxy.ts
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createProxyMiddleware } from 'http-proxy-middleware';

const target = process.env.BENCH_TARGET;
if (!target) {
  process.stderr.write('bare-proxy: BENCH_TARGET is required\n');
  process.exit(2);
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const proxy = createProxyMiddleware({ target, changeOrigin: true, agent });
const server = http.createServer((req, res) => {
  void proxy(req, res, () => res.writeHead(404).end());
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});

const stop = (): void => {
  server.closeAllConnections();
  server.close(() => {
    agent.destroy();
    process.exit(0);
  });
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
