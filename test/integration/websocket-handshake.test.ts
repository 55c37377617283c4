import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { loginThroughGateway } from '../support/browser-flow.ts';
import { getFreePort } from '../support/ports.ts';
import { startStack, type Stack } from '../support/stack.ts';

/**
 * WebSocket handshakes are answered by the upstream, and the answer reaches
 * the browser of the gateway's origin: its Set-Cookie for the gateway's own
 * cookies must be dropped there as on any HTTP response. Seen here with raw
 * sockets, as the bytes a browser would receive.
 */

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const EVIL = ['bff=evil; Path=/', 'bff-tx=evil; Path=/; HttpOnly'];
const HARMLESS = 'app=1; Path=/';

type Upstream = { url: string; handshakes: number; close(): Promise<void> };

/** An upstream whose handshake answer is written raw, exactly as each test needs it. */
async function rawUpstream(answer: (socket: Duplex, key: string) => void, tls?: { key: string; cert: string }): Promise<Upstream> {
  const server = tls ? https.createServer(tls, (_req, res) => res.writeHead(426).end()) : http.createServer((_req, res) => res.writeHead(426).end());
  const sockets = new Set<Duplex>();
  const upstream: Upstream = { url: '', handshakes: 0, close: async () => undefined };
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex) => {
    upstream.handshakes += 1;
    sockets.add(socket);
    socket.on('error', () => socket.destroy());
    socket.once('close', () => sockets.delete(socket));
    answer(socket, String(req.headers['sec-websocket-key']));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  upstream.url = `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  upstream.close = async () => {
    for (const socket of sockets) socket.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return upstream;
}

/** 101 with the gateway's cookies and a harmless one, then echoes every byte (the gateway relays bytes, not frames). */
const switching = (socket: Duplex, key: string): void => {
  const accept = createHash('sha1')
    .update(key + WS_GUID)
    .digest('base64');
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n` +
      [...EVIL, HARMLESS].map((cookie) => `Set-Cookie: ${cookie}\r\n`).join('') +
      'Keep-Alive: timeout=5\r\n\r\n',
  );
  socket.pipe(socket);
};

/** A refusal with the gateway's cookies and a harmless one, its body chunked or with a length. */
const refusing =
  (status: 401 | 403, framing: 'chunked' | 'length') =>
  (socket: Duplex): void => {
    const body = `refused ${status}`;
    const framed = framing === 'chunked' ? `Transfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n` : `Content-Length: ${body.length}\r\n\r\n${body}`;
    socket.end(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nWWW-Authenticate: Bearer\r\n` +
        [...EVIL, HARMLESS].map((cookie) => `Set-Cookie: ${cookie}\r\n`).join('') +
        `Content-Type: text/plain\r\n${framed}`,
    );
  };

type Answer = { status: number; headers: Array<[string, string]>; body: Buffer; socket: net.Socket };

/** Sends an upgrade request over a plain TCP socket; resolves with the answer's head once it is complete (and, if refused, the body up to the close). */
function rawUpgrade(gatewayUrl: string, path: string, headers: Record<string, string>): Promise<Answer> {
  const target = new URL(gatewayUrl);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(target.port), target.hostname);
    let received = Buffer.alloc(0);
    let head: Omit<Answer, 'body' | 'socket'> | undefined;
    let bodyStart = 0;
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (head) return;
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [statusLine = '', ...lines] = received.subarray(0, end).toString('latin1').split('\r\n');
      head = {
        status: Number(statusLine.split(' ')[1]),
        headers: lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
      };
      bodyStart = end + 4;
      if (head.status === 101) {
        // Held until the test reads, so that no relayed byte is lost in between.
        socket.pause();
        socket.removeAllListeners('data');
        socket.off('error', reject);
        socket.on('error', () => undefined);
        const rest = received.subarray(bodyStart);
        if (rest.length > 0) socket.unshift(rest);
        resolve({ ...head, body: Buffer.alloc(0), socket });
      }
    });
    socket.on('end', () => {
      if (head && head.status !== 101) resolve({ ...head, body: received.subarray(bodyStart), socket });
      else if (!head) reject(new Error(`connection closed before an answer: ${received.toString('latin1')}`));
    });
    const lines = {
      Host: target.host,
      Connection: 'Upgrade',
      Upgrade: 'websocket',
      'Sec-WebSocket-Version': '13',
      'Sec-WebSocket-Key': KEY,
      ...headers,
    };
    socket.write(
      `GET ${path} HTTP/1.1\r\n${Object.entries(lines)
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join('')}\r\n`,
    );
  });
}

const setCookies = (answer: Answer): string[] => answer.headers.filter(([name]) => name === 'set-cookie').map(([, value]) => value);

function expectOnlyHarmlessCookie(answer: Answer): void {
  // The client received the bytes: nothing names the gateway's cookies, the upstream's own cookie still passes.
  expect(setCookies(answer)).toEqual([HARMLESS]);
  expect(answer.headers.map(([name]) => name)).not.toContain('keep-alive');
}

let stack: Stack;
let cookie: string;
let upstreams: Upstream[] = [];
let switches: Upstream;
let tlsDir: string;
const opened: net.Socket[] = [];

beforeAll(async () => {
  tlsDir = mkdtempSync(join(tmpdir(), 'bff-wss-'));
  const keyFile = join(tlsDir, 'key.pem');
  const certFile = join(tlsDir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyFile, '-out', certFile], {
    stdio: 'ignore',
  });
  const tls = { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8') };
  upstreams = await Promise.all([rawUpstream(switching), rawUpstream(refusing(401, 'chunked')), rawUpstream(refusing(403, 'length')), rawUpstream(() => undefined), rawUpstream(switching, tls)]);
  const [switching101, refuses401, refuses403, silent, secure] = upstreams as [Upstream, Upstream, Upstream, Upstream, Upstream];
  switches = switching101;
  const closedPort = await getFreePort();
  const ws = { token: 'user', websocket: true };
  stack = await startStack({
    routes: [
      { prefix: '/api/switches', target: switching101.url, ...ws },
      { prefix: '/api/refuses401', target: refuses401.url, ...ws },
      { prefix: '/api/refuses403', target: refuses403.url, ...ws },
      { prefix: '/api/silent', target: silent.url, timeoutMs: 300, ...ws },
      { prefix: '/api/unreachable', target: `http://127.0.0.1:${closedPort}`, ...ws },
      { prefix: '/api/wss-trusted', target: secure.url, caFile: certFile, ...ws },
      { prefix: '/api/wss-untrusted', target: secure.url, ...ws },
    ],
  });
  cookie = (await loginThroughGateway(stack.gw.url)).cookieHeader;
});
afterAll(async () => {
  for (const socket of opened) socket.destroy();
  await stack?.close();
  await Promise.all(upstreams.map((upstream) => upstream.close()));
  if (tlsDir) rmSync(tlsDir, { recursive: true, force: true });
});

async function upgrade(path: string): Promise<Answer> {
  const answer = await rawUpgrade(stack.gw.url, path, { Cookie: cookie, Origin: stack.gw.url });
  opened.push(answer.socket);
  return answer;
}

function echoed(socket: net.Socket, bytes: string): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const onData = (chunk: Buffer): void => {
      got += chunk.toString('latin1');
      if (got.length >= bytes.length) {
        socket.off('data', onData);
        resolve(got);
      }
    };
    socket.on('data', onData);
    socket.resume();
    socket.write(bytes);
  });
}

describe("an upstream cannot set the gateway's cookies through a WebSocket handshake", () => {
  test("on a 101 the Set-Cookie for the session and transaction cookies is dropped, the upstream's own passes, and bytes flow", async () => {
    const answer = await upgrade('/api/switches/chat');
    expect(answer.status).toBe(101);
    expectOnlyHarmlessCookie(answer);
    const accept = createHash('sha1')
      .update(KEY + WS_GUID)
      .digest('base64');
    expect(answer.headers).toEqual(
      expect.arrayContaining([
        ['upgrade', 'websocket'],
        ['connection', 'Upgrade'],
        ['sec-websocket-accept', accept],
      ]),
    );
    expect(await echoed(answer.socket, 'raw bytes both ways')).toBe('raw bytes both ways');
    const warnings = stack.gw.logs.filter((line) => line.includes("gateway's own cookie on a WebSocket handshake"));
    expect(warnings.length).toBeGreaterThan(0);
    // Logged without the value.
    expect(warnings.join('')).not.toContain('evil');
    answer.socket.destroy();
  });

  test.each([
    ['401 with a chunked body', '/api/refuses401/chat', 401],
    ['403 with a Content-Length', '/api/refuses403/chat', 403],
  ])("on a refused handshake (%s) the status and body pass, without the gateway's cookies", async (_name, path, status) => {
    const answer = await upgrade(path);
    expect(answer.status).toBe(status);
    expectOnlyHarmlessCookie(answer);
    expect(answer.headers).toEqual(
      expect.arrayContaining([
        ['www-authenticate', 'Bearer'],
        ['connection', 'close'],
      ]),
    );
    // Re-framed by the gateway: close-delimited or with the upstream's length, never the upstream's chunking.
    expect(answer.headers.map(([name]) => name)).not.toContain('transfer-encoding');
    expect(answer.body.toString('latin1')).toBe(`refused ${status}`);
  });
});

describe('the hand-written handshake forwarder', () => {
  test('an upstream that does not answer the handshake within timeoutMs is 504 problem+json', async () => {
    const started = Date.now();
    const answer = await upgrade('/api/silent/chat');
    expect(answer.status).toBe(504);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(JSON.parse(answer.body.toString('utf8')).code).toBe('upstream_timeout');
  });

  test('an unreachable upstream is 502 problem+json', async () => {
    const answer = await upgrade('/api/unreachable/chat');
    expect(answer.status).toBe(502);
    expect(JSON.parse(answer.body.toString('utf8')).code).toBe('upstream_unavailable');
  });

  test('a wss upstream is verified: its CA file trusted on the route opens it, without it the handshake is 502', async () => {
    const trusted = await upgrade('/api/wss-trusted/chat');
    expect(trusted.status).toBe(101);
    expectOnlyHarmlessCookie(trusted);
    expect(await echoed(trusted.socket, 'over tls')).toBe('over tls');
    trusted.socket.destroy();
    expect((await upgrade('/api/wss-untrusted/chat')).status).toBe(502);
  });

  test('an upgrade to anything but WebSocket (h2c) is refused before any upstream connection', async () => {
    const before = switches.handshakes;
    const answer = await rawUpgrade(stack.gw.url, '/api/switches/chat', { Cookie: cookie, Origin: stack.gw.url, Upgrade: 'h2c', 'HTTP2-Settings': 'AAMAAABkAARAAAAAAAIAAAAA' });
    opened.push(answer.socket);
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body.toString('utf8')).code).toBe('websocket_required');
    expect(switches.handshakes).toBe(before);
  });
});
