import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { once } from 'node:events';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { startEcho, type EchoReply, type EchoServer } from '../support/echo.ts';
import { TEST_SESSION_SECRET } from '../support/gateway.ts';
import { startIdp, TEST_CLIENT_ID, TEST_CLIENT_SECRET, type TestIdp } from '../support/idp.ts';
import { getFreePort } from '../support/ports.ts';

/**
 * The gateway runs as a child process (`node src/index.ts`, as in production) so that its
 * memory can be measured apart from jest's; the IdP, the echo upstream and the streaming
 * upstream live in this process.
 */

const MiB = 1024 * 1024;
const UPLOAD_BYTES = 200 * MiB;
const UPLOAD_CHUNK = 64 * 1024;
/**
 * The gateway's RSS may grow by this much while the 200 MB body passes through. Growth is
 * measured from a steady state reached with a 64 MiB warm-up upload: V8 grows its young
 * generation (tens of MiB of spent socket buffers between scavenges) on the first large body
 * whatever its size, so what must not grow is the cost of a body three times larger.
 */
const RSS_CEILING = 50 * MiB;
const WARM_UP_BYTES = 64 * MiB;
const SSE_EVENTS = 5;
const SSE_INTERVAL_MS = 150;

type Hang = { url: string; closedAt?: number; finished?: boolean };
/** What the upstream saw of an upload the browser abandoned: the bytes, and whether it took the body for complete. */
type Upload = { bytes: number; complete?: boolean };

/** The upstream for streaming: SSE, a response that never ends, and a chunked body. */
type StreamUpstream = {
  url: string;
  /** performance.now() of each SSE write, in order, and of the end of the SSE response. */
  sse: { writes: number[]; endedAt?: number };
  hangs: Hang[];
  uploads: Upload[];
  /** The bytes the chunked response sent. */
  chunkedBody: Buffer;
  close(): Promise<void>;
};

let idp: TestIdp;
let echo: EchoServer;
let streams: StreamUpstream;
let gateway: ChildProcess;
let gatewayUrl: URL;
let gatewayOutput = '';
let workDir: string;

beforeAll(async () => {
  [echo, streams] = await Promise.all([startEcho(), startStreamUpstream()]);
  const port = await getFreePort();
  const adminPort = await getFreePort();
  gatewayUrl = new URL(`http://127.0.0.1:${port}`);
  idp = await startIdp({ redirectUris: [`${gatewayUrl.origin}/auth/callback`] });
  workDir = mkdtempSync(join(tmpdir(), 'bff-streaming-'));
  const routesFile = join(workDir, 'routes.json');
  writeFileSync(
    routesFile,
    JSON.stringify({
      routes: [
        { prefix: '/api/upload', target: echo.url, token: 'none' },
        { prefix: '/api/stream', target: streams.url, token: 'none', stripPrefix: true },
      ],
    }),
  );
  gateway = spawn(process.execPath, ['src/index.ts'], {
    cwd: resolve(import.meta.dirname, '../..'),
    env: {
      PATH: process.env.PATH ?? '',
      BFF_PUBLIC_URL: gatewayUrl.origin,
      BFF_PORT: String(port),
      BFF_ADMIN_PORT: String(adminPort),
      BFF_ISSUER_URL: idp.issuer,
      BFF_ALLOW_INSECURE_ISSUER: 'true',
      BFF_CLIENT_ID: TEST_CLIENT_ID,
      BFF_CLIENT_SECRET: TEST_CLIENT_SECRET,
      BFF_SESSION_SECRETS: TEST_SESSION_SECRET,
      BFF_ROUTES_FILE: routesFile,
      BFF_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const collect = (chunk: Buffer): void => {
    gatewayOutput = (gatewayOutput + chunk.toString('utf8')).slice(-8000);
  };
  gateway.stdout?.on('data', collect);
  gateway.stderr?.on('data', collect);
  await waitForHealthz(`http://127.0.0.1:${adminPort}/healthz`, gateway);
}, 30_000);

afterAll(async () => {
  if (gateway && gateway.exitCode === null && gateway.signalCode === null) {
    const exited = new Promise<void>((done) => gateway.once('exit', () => done()));
    gateway.kill('SIGTERM');
    const force = setTimeout(() => gateway.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(force);
  }
  await Promise.all([streams?.close(), echo?.close(), idp?.close()]);
  if (workDir) rmSync(workDir, { recursive: true, force: true });
}, 30_000);

describe('request bodies stream', () => {
  test('a 200 MB upload reaches the upstream byte for byte in constant gateway memory (RSS growth well under the body size)', async () => {
    const pid = gateway.pid as number;
    // Warm-up: loads the code paths and the upstream agent, and lets the heap reach its streaming size.
    const warm = await upload(WARM_UP_BYTES);
    expect(warm.reply.bodyLength).toBe(WARM_UP_BYTES);
    expect(warm.reply.bodySha256).toBe(warm.sha256);
    await delay(200);
    const baseline = rssOf(pid);
    let max = baseline;
    const sampler = setInterval(() => {
      max = Math.max(max, rssOf(pid));
    }, 50);
    let result: Awaited<ReturnType<typeof upload>>;
    try {
      result = await upload(UPLOAD_BYTES);
    } finally {
      clearInterval(sampler);
    }
    max = Math.max(max, rssOf(pid));
    expect(result.status).toBe(200);
    expect(result.reply.url).toBe('/api/upload/big');
    expect(result.reply.headers['transfer-encoding']).toBe('chunked');
    expect(result.reply.bodyLength).toBe(UPLOAD_BYTES);
    expect(result.reply.bodySha256).toBe(result.sha256);
    // A gateway that buffered the body would hold all 200 MiB of it.
    expect(max - baseline).toBeLessThan(RSS_CEILING);
  }, 180_000);
});

describe('response bodies stream', () => {
  test('server-sent events reach the client one by one, before the upstream ends, uncompressed', async () => {
    const arrivals: Array<{ data: string; at: number }> = [];
    const res = await new Promise<http.IncomingMessage>((done, fail) => {
      const req = http.get(
        {
          host: gatewayUrl.hostname,
          port: gatewayUrl.port,
          path: '/api/stream/events',
          headers: { 'x-csrf': '1', accept: 'text/event-stream', 'accept-encoding': 'gzip, deflate, br' },
        },
        done,
      );
      req.on('error', fail);
    });
    const headersAt = performance.now();
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/event-stream');
    expect(res.headers['content-encoding']).toBeUndefined();
    await new Promise<void>((done, fail) => {
      let buffered = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        const at = performance.now();
        buffered += chunk;
        let end: number;
        while ((end = buffered.indexOf('\n\n')) >= 0) {
          arrivals.push({ data: buffered.slice(0, end), at });
          buffered = buffered.slice(end + 2);
        }
      });
      res.on('end', () => done());
      res.on('error', fail);
    });

    const { writes, endedAt } = streams.sse;
    expect(arrivals.map((a) => a.data)).toEqual(['data: 1', 'data: 2', 'data: 3', 'data: 4', 'data: 5']);
    expect(writes).toHaveLength(SSE_EVENTS);
    expect(endedAt).toBeDefined();
    const ended = endedAt as number;
    // The headers come through as soon as the upstream sends them, before any event (EventSource opens then).
    expect(headersAt).toBeLessThan(writes[0]!);
    // The first event is seen while the upstream still has four to write (600 ms of them).
    expect(arrivals[0]!.at).toBeLessThan(ended - 3 * SSE_INTERVAL_MS);
    // Each event arrives about when it is written, not held back for the next ones.
    for (let i = 0; i < SSE_EVENTS; i++) expect(arrivals[i]!.at - writes[i]!).toBeLessThan(SSE_INTERVAL_MS * 0.6);
    // ...so they arrive spread out as they were written, not in one burst.
    for (let i = 1; i < SSE_EVENTS; i++) expect(arrivals[i]!.at - arrivals[i - 1]!.at).toBeGreaterThan(SSE_INTERVAL_MS * 0.3);
  });

  test('a chunked response body (no Content-Length) passes through intact', async () => {
    const res = await new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>((done, fail) => {
      const req = http.get({ host: gatewayUrl.hostname, port: gatewayUrl.port, path: '/api/stream/chunks', headers: { 'x-csrf': '1' } }, (response) => {
        const parts: Buffer[] = [];
        response.on('data', (chunk: Buffer) => parts.push(chunk));
        response.on('end', () => done({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(parts) }));
        response.on('error', fail);
      });
      req.on('error', fail);
    });
    expect(res.status).toBe(200);
    expect(res.headers['transfer-encoding']).toBe('chunked');
    expect(res.headers['content-length']).toBeUndefined();
    expect(res.body.length).toBe(streams.chunkedBody.length);
    expect(res.body.equals(streams.chunkedBody)).toBe(true);
  });

  test('a client that disconnects after the response started aborts the upstream request', async () => {
    const before = streams.hangs.length;
    const { status, first, destroyedAt } = await new Promise<{ status: number; first: string; destroyedAt: number }>((done, fail) => {
      const req = http.get({ host: gatewayUrl.hostname, port: gatewayUrl.port, path: '/api/stream/hang', headers: { 'x-csrf': '1' } }, (res) => {
        // The response has started and then stalls: the user navigates away.
        res.once('data', (chunk: Buffer) => {
          req.destroy();
          done({ status: res.statusCode ?? 0, first: chunk.toString('utf8'), destroyedAt: performance.now() });
        });
      });
      req.on('error', (err) => {
        if (!req.destroyed) fail(err);
      });
    });
    expect(status).toBe(200);
    expect(first).toBe('started\n');
    await expectUpstreamAborted(streams.hangs[before], '/hang', destroyedAt);
  });

  test('a client that disconnects while waiting for the response headers aborts the upstream request', async () => {
    const before = streams.hangs.length;
    const req = http.get({ host: gatewayUrl.hostname, port: gatewayUrl.port, path: '/api/stream/silent', headers: { 'x-csrf': '1' } });
    let failure: Error | undefined;
    let responded = false;
    req.on('response', () => (responded = true));
    req.on('error', (err) => {
      if (!req.destroyed) failure = err;
    });
    // Give up once the upstream is working on it.
    const deadline = Date.now() + 5000;
    while (streams.hangs.length === before && Date.now() < deadline) await delay(10);
    req.destroy();
    const destroyedAt = performance.now();
    expect(failure).toBeUndefined();
    expect(responded).toBe(false);
    await expectUpstreamAborted(streams.hangs[before], '/silent', destroyedAt);
  });
});

describe('a browser that stops mid-body', () => {
  // Raw sockets: an HTTP client would not send a body and then vanish on purpose.
  async function abandonUpload(framing: string, body: Buffer): Promise<Upload> {
    const before = streams.uploads.length;
    const socket = connect(Number(gatewayUrl.port), gatewayUrl.hostname);
    await once(socket, 'connect');
    socket.write(`POST /api/stream/abandoned HTTP/1.1\r\nHost: ${gatewayUrl.host}\r\nX-CSRF: 1\r\nContent-Type: application/octet-stream\r\n${framing}\r\n\r\n`);
    socket.write(body);
    // Wait until the upstream has received part of it, then go away.
    const deadline = Date.now() + 5000;
    while ((streams.uploads[before]?.bytes ?? 0) === 0 && Date.now() < deadline) await delay(10);
    socket.destroy();
    const upload = streams.uploads[before];
    while (upload?.complete === undefined && Date.now() < deadline) await delay(10);
    if (upload === undefined) throw new Error(`the upstream saw no upload\n${gatewayOutput}`);
    return upload;
  }

  test('chunked: the upstream never takes the truncated body for the whole one', async () => {
    const part = randomBytes(256 * 1024);
    const upload = await abandonUpload('Transfer-Encoding: chunked', Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')]));
    expect(upload.bytes).toBeGreaterThan(0);
    expect(upload.complete).toBe(false);
  });

  test('Content-Length: the upstream never takes the truncated body for the whole one', async () => {
    const upload = await abandonUpload(`Content-Length: ${4 * MiB}`, randomBytes(256 * 1024));
    expect(upload.bytes).toBeGreaterThan(0);
    expect(upload.complete).toBe(false);
  });
});

describe('upstream response headers', () => {
  test('a header that holds one value reaches the browser once (the first); list headers keep every line', async () => {
    const res = await fetch(`${gatewayUrl.origin}/api/stream/repeated-headers`, { headers: { 'x-csrf': '1' }, redirect: 'manual' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain');
    expect(res.headers.get('location')).toBe('/first');
    expect(res.headers.get('x-list')).toBe('a, b');
    expect(await res.text()).toBe('ok');
  });

  test('hop-by-hop response headers (those Connection names, Proxy-Authenticate) stay on the upstream hop', async () => {
    const res = await fetch(`${gatewayUrl.origin}/api/stream/hop-by-hop`, { headers: { 'x-csrf': '1' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-upstream-hop')).toBeNull();
    expect(res.headers.get('proxy-authenticate')).toBeNull();
    expect(res.headers.get('x-end-to-end')).toBe('kept');
    expect(await res.text()).toBe('ok');
  });

  test('an informational 103 from the upstream is not taken for the answer', async () => {
    const res = await fetch(`${gatewayUrl.origin}/api/stream/early-hints`, { headers: { 'x-csrf': '1' } });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('final');
  });
});

/** Waits (up to 3 s) for the upstream to see its response closed, and checks it was closed within 2 s, unfinished. */
async function expectUpstreamAborted(hang: Hang | undefined, url: string, destroyedAt: number): Promise<void> {
  expect(hang?.url).toBe(url);
  const deadline = Date.now() + 3000;
  while (hang?.closedAt === undefined && Date.now() < deadline) await delay(20);
  expect(hang?.closedAt).toBeDefined();
  expect((hang?.closedAt as number) - destroyedAt).toBeLessThan(2000);
  // The upstream never ended its response: the close is the abort, not the end.
  expect(hang?.finished).toBe(false);
}

/** POSTs `size` pseudo-random bytes, chunked, respecting back-pressure and hashing as it sends. */
async function upload(size: number): Promise<{ status: number; reply: EchoReply; sha256: string }> {
  const hash = createHash('sha256');
  return new Promise((done, fail) => {
    const req = http.request(
      {
        host: gatewayUrl.hostname,
        port: gatewayUrl.port,
        path: size === UPLOAD_BYTES ? '/api/upload/big' : '/api/upload/warm',
        method: 'POST',
        headers: { 'x-csrf': '1', 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          try {
            done({ status: res.statusCode ?? 0, reply: JSON.parse(text) as EchoReply, sha256: hash.digest('hex') });
          } catch (err) {
            fail(new Error(`upload: HTTP ${res.statusCode}: ${text.slice(0, 300)}\n${gatewayOutput}`, { cause: err }));
          }
        });
        res.on('error', fail);
      },
    );
    req.on('error', (err) => fail(new Error(`upload failed: ${err.message}\n${gatewayOutput}`)));
    let sent = 0;
    const pump = (): void => {
      while (sent < size) {
        const chunk = randomBytes(Math.min(UPLOAD_CHUNK, size - sent));
        sent += chunk.length;
        hash.update(chunk);
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

/** Resident set size of a process, in bytes, from /proc (VmRSS is in kB). */
function rssOf(pid: number): number {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}

async function waitForHealthz(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the gateway exited (${child.exitCode ?? child.signalCode}):\n${gatewayOutput}`);
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await delay(100);
  }
  throw new Error(`the gateway did not answer ${url} within 20 s:\n${gatewayOutput}`);
}

async function startStreamUpstream(): Promise<StreamUpstream> {
  const sse: StreamUpstream['sse'] = { writes: [] };
  const hangs: Hang[] = [];
  const uploads: Upload[] = [];
  const chunkedParts = Array.from({ length: 6 }, (_, i) => randomBytes(10_000 + i * 3_001));
  const timers = new Set<NodeJS.Timeout>();
  const server = http.createServer((req, res) => {
    if (req.url === '/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.flushHeaders();
      let n = 0;
      const timer = setInterval(() => {
        n += 1;
        sse.writes.push(performance.now());
        res.write(`data: ${n}\n\n`);
        if (n === SSE_EVENTS) {
          clearInterval(timer);
          timers.delete(timer);
          // The end comes one interval after the last event, so "before the end" is measurable for each event.
          const end = setTimeout(() => {
            timers.delete(end);
            sse.endedAt = performance.now();
            res.end();
          }, SSE_INTERVAL_MS);
          timers.add(end);
        }
      }, SSE_INTERVAL_MS);
      timers.add(timer);
      return;
    }
    if (req.url === '/hang' || req.url === '/silent') {
      const hang: Hang = { url: req.url };
      res.on('close', () => {
        hang.closedAt = performance.now();
        hang.finished = res.writableFinished;
      });
      hangs.push(hang);
      // `/hang` starts its response and stalls; `/silent` never even sends headers.
      if (req.url === '/hang') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('started\n');
      }
      return;
    }
    if (req.url === '/abandoned') {
      const upload: Upload = { bytes: 0 };
      uploads.push(upload);
      req.on('data', (chunk: Buffer) => (upload.bytes += chunk.length));
      req.on('end', () => {
        upload.complete = true;
        res.writeHead(200).end();
      });
      req.on('close', () => (upload.complete ??= req.complete));
      return;
    }
    if (req.url === '/repeated-headers') {
      // Two of a header that holds one value, as a broken or hostile upstream may send them; and one that is a list.
      res.writeHead(200, [
        ['Content-Type', 'text/plain'],
        ['Content-Type', 'text/html'],
        ['Location', '/first'],
        ['Location', 'https://evil.example/'],
        ['X-List', 'a'],
        ['X-List', 'b'],
      ]);
      res.end('ok');
      return;
    }
    if (req.url === '/hop-by-hop') {
      // Headers for this hop only: those Connection names, and Proxy-Authenticate (the proxy's, not the browser's).
      res.writeHead(200, { connection: 'keep-alive, X-Upstream-Hop', 'x-upstream-hop': 'for the gateway only', 'proxy-authenticate': 'Basic realm="upstream"', 'x-end-to-end': 'kept' });
      res.end('ok');
      return;
    }
    if (req.url === '/early-hints') {
      res.writeEarlyHints({ link: '</app.css>; rel=preload; as=style' });
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('final');
      return;
    }
    if (req.url === '/chunks') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      let i = 0;
      const next = (): void => {
        const part = chunkedParts[i++];
        if (part === undefined) return void res.end();
        res.write(part);
        const timer = setTimeout(() => {
          timers.delete(timer);
          next();
        }, 20);
        timers.add(timer);
      };
      next();
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => done());
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    sse,
    hangs,
    uploads,
    chunkedBody: Buffer.concat(chunkedParts),
    close() {
      for (const timer of timers) clearTimeout(timer);
      server.closeAllConnections();
      return new Promise<void>((done, fail) => server.close((err) => (err ? fail(err) : done())));
    },
  };
}
