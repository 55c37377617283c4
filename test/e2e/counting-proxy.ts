import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';

export type CountingProxy = {
  /** http://127.0.0.1:<port>: route the gateway here instead of to the upstream itself. */
  url: string;
  /** Requests that reached the upstream through here, in arrival order. */
  readonly seen: ReadonlyArray<{ method: string; url: string; bearer: boolean }>;
  close(): Promise<void>;
};

/**
 * A transparent pass-through in front of an upstream, so that a test can tell whether a
 * request got past the gateway at all (the demo API itself keeps no record).
 */
export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const seen: Array<{ method: string; url: string; bearer: boolean }> = [];
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', bearer: /^Bearer /i.test(req.headers.authorization ?? '') });
    const upstream = request(new URL(req.url ?? '/', target), { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close() {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
