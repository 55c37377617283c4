import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type EchoRequest = {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
};

/** What the echo upstream answers to every request. */
export type EchoReply = EchoRequest & {
  bodyLength: number;
  bodySha256: string;
};

export type EchoServer = {
  /** http://127.0.0.1:<port> */
  url: string;
  /** Every request received, in arrival order (tests may empty it with `length = 0`). */
  requests: EchoRequest[];
  /** TCP connections accepted so far: shows whether a keep-alive agent reuses sockets. */
  readonly connections: number;
  close(): Promise<void>;
};

const MAX_SLOW_MS = 60_000;

/**
 * A plain upstream for proxy tests. It reports what arrived (method, URL, headers, body
 * size and SHA-256) so a test can prove what the gateway forwarded, and it streams the
 * body through the hash so that uploads of any size cost it constant memory too.
 *
 * Special paths, matched on the last path segment so they work behind any route prefix:
 * `…/__slow?ms=N` answers after N ms; `…/__status?code=N` answers with status N;
 * `…/__set-cookie?set=<Set-Cookie value>&set=…` answers with those Set-Cookie headers.
 */
export async function startEcho(): Promise<EchoServer> {
  const requests: EchoRequest[] = [];
  let connections = 0;

  const server = createServer((req, res) => {
    const record: EchoRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers };
    requests.push(record);
    handle(req, res, record);
  });
  server.on('connection', () => {
    connections += 1;
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get connections() {
      return connections;
    },
    close() {
      server.closeAllConnections();
      return new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
  };
}

function handle(req: IncomingMessage, res: ServerResponse, record: EchoRequest): void {
  const url = new URL(record.url, 'http://echo.invalid');
  const lastSegment = url.pathname.slice(url.pathname.lastIndexOf('/') + 1);

  const hash = createHash('sha256');
  let bodyLength = 0;
  req.on('data', (chunk: Buffer) => {
    bodyLength += chunk.length;
    hash.update(chunk);
  });
  req.on('error', () => res.destroy());
  req.on('end', () => {
    const reply: EchoReply = { ...record, bodyLength, bodySha256: hash.digest('hex') };
    if (lastSegment === '__slow') {
      const ms = clamp(Number(url.searchParams.get('ms') ?? 0), 0, MAX_SLOW_MS);
      const timer = setTimeout(() => send(res, 200, reply), ms);
      // A client that gives up (a gateway timeout) must not leave a timer holding jest open.
      res.on('close', () => clearTimeout(timer));
      return;
    }
    if (lastSegment === '__status') {
      const code = Number(url.searchParams.get('code'));
      send(res, Number.isInteger(code) && code >= 200 && code <= 599 ? code : 400, reply);
      return;
    }
    if (lastSegment === '__set-cookie') res.setHeader('set-cookie', url.searchParams.getAll('set'));
    send(res, 200, reply);
  });
}

function send(res: ServerResponse, status: number, reply: EchoReply): void {
  if (res.destroyed) return;
  if (status === 204 || status === 304) {
    res.writeHead(status).end();
    return;
  }
  const body = JSON.stringify(reply);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function clamp(value: number, min: number, max: number): number {
  return Number.isFinite(value) ? Math.min(Math.max(value, min), max) : min;
}
