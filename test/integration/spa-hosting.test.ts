import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import request from 'supertest';
import { WebSocket, WebSocketServer } from 'ws';
import { loginThroughGateway } from '../support/browser-flow.ts';
import { reserveGatewayUrl, startTestGateway, type TestGateway } from '../support/gateway.ts';
import { getFreePort } from '../support/ports.ts';
import { RawConnection } from '../support/raw-socket.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { nextMessage, upgradeOutcome } from '../support/websocket.ts';

const INDEX_HTML = '<!doctype html><html><head><script type="module" src="/assets/index-3f2a1b9c.js"></script></head><body><div id="app"></div></body></html>';
const HASHED_JS = 'console.log("built");\n';
const HASHED_CSS = 'body { margin: 0 }\n';
const ROBOTS = 'User-agent: *\nDisallow:\n';
const IMMUTABLE = 'public, max-age=31536000, immutable';

function expectProblem(res: request.Response, status: number, code: string): void {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect((JSON.parse(res.text) as { code: string }).code).toBe(code);
}

describe('BFF_STATIC_DIR: the built SPA', () => {
  let dir: string;
  let stack: Stack;
  let custom: TestGateway;
  const CUSTOM_CSP = "default-src 'self'; script-src 'self' 'sha256-q1ebdvR2JZ3vGLTTxMmqA+BgrXjRcM6pQFqKGQcUeXM='; frame-ancestors 'none'";

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bff-spa-'));
    mkdirSync(join(dir, 'assets'));
    writeFileSync(join(dir, 'index.html'), INDEX_HTML);
    writeFileSync(join(dir, 'assets', 'index-3f2a1b9c.js'), HASHED_JS);
    writeFileSync(join(dir, 'main.0123abcd.css'), HASHED_CSS);
    writeFileSync(join(dir, 'robots.txt'), ROBOTS);
    stack = await startStack({ env: { BFF_STATIC_DIR: dir }, routes: [{ prefix: '/api/public', target: 'ECHO', token: 'none' }] });
    custom = await startTestGateway({ url: await reserveGatewayUrl(), issuer: stack.idp.issuer, store: 'memory', env: { BFF_STATIC_DIR: dir, BFF_CSP: CUSTOM_CSP } });
  });
  afterAll(async () => {
    await custom?.close();
    await stack?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('/ and deep links are index.html, revalidated, under the strict default CSP', async () => {
    for (const path of ['/', '/orders/42', '/orders/42/lines?tab=2']) {
      const res = await request(stack.gw.url).get(path).set('Accept', 'text/html,application/xhtml+xml,*/*;q=0.8');
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.text).toBe(INDEX_HTML);
      expect(res.headers['cache-control']).toBe('no-cache');
      const csp = res.headers['content-security-policy'];
      expect(csp).toBe(stack.gw.config.contentSecurityPolicy);
      expect(csp).toContain("default-src 'self'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("object-src 'none'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain('unsafe-inline');
      expect(csp).not.toContain('unsafe-eval');
    }
    const direct = await request(stack.gw.url).get('/index.html');
    expect(direct.status).toBe(200);
    expect(direct.text).toBe(INDEX_HTML);
    expect(direct.headers['cache-control']).toBe('no-cache');
  });

  test('content-hashed assets are cached for a year, other files are revalidated', async () => {
    const js = await request(stack.gw.url).get('/assets/index-3f2a1b9c.js');
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toMatch(/javascript/);
    expect(js.text).toBe(HASHED_JS);
    expect(js.headers['cache-control']).toBe(IMMUTABLE);

    const css = await request(stack.gw.url).get('/main.0123abcd.css');
    expect(css.status).toBe(200);
    expect(css.headers['content-type']).toMatch(/^text\/css/);
    expect(css.text).toBe(HASHED_CSS);
    expect(css.headers['cache-control']).toBe(IMMUTABLE);

    const robots = await request(stack.gw.url).get('/robots.txt');
    expect(robots.status).toBe(200);
    expect(robots.text).toBe(ROBOTS);
    expect(robots.headers['cache-control']).toBe('no-cache');
  });

  test('a missing asset is 404, never the SPA shell', async () => {
    for (const path of ['/assets/index-deadbeef.js', '/main.fedcba98.css', '/favicon.ico']) {
      const res = await request(stack.gw.url).get(path).set('Accept', 'text/html,*/*');
      expect(res.status).toBe(404);
      expect(res.text).not.toContain('<div id="app">');
      expect(res.headers['cache-control']).not.toBe(IMMUTABLE);
    }
  });

  test('/api and /auth paths never get index.html', async () => {
    const html = { Accept: 'text/html,application/xhtml+xml' };
    expectProblem(await request(stack.gw.url).get('/api/nothing/here').set(html).set('x-csrf', '1'), 404, 'route_not_found');
    expectProblem(await request(stack.gw.url).get('/api').set(html).set('x-csrf', '1'), 404, 'route_not_found');
    // A navigation to an API route is still the API's: the CSRF check answers, not the SPA.
    expectProblem(await request(stack.gw.url).get('/api/public/page').set(html), 403, 'csrf_header_missing');
    const proxied = await request(stack.gw.url).get('/api/public/page').set(html).set('x-csrf', '1');
    expect(proxied.status).toBe(200);
    expect((proxied.body as { url: string }).url).toBe('/api/public/page');
    expectProblem(await request(stack.gw.url).get('/auth/user').set(html), 401, 'not_authenticated');
    const unknownAuth = await request(stack.gw.url).get('/auth/no-such-page').set(html);
    expect(unknownAuth.status).toBe(404);
    expect(unknownAuth.text).not.toContain('<div id="app">');
  });

  test('BFF_CSP replaces the policy the SPA documents carry', async () => {
    for (const path of ['/', '/orders/42']) {
      const res = await request(custom.url).get(path).set('Accept', 'text/html');
      expect(res.status).toBe(200);
      expect(res.text).toBe(INDEX_HTML);
      expect(res.headers['content-security-policy']).toBe(CUSTOM_CSP);
    }
  });
});

/** A stand-in for Vite's dev server: two files, and an HMR WebSocket on the same server. */
type DevServer = {
  url: string;
  requests: Array<{ url: string; headers: IncomingHttpHeaders }>;
  handshakes: Array<{ url: string; headers: IncomingHttpHeaders }>;
  readonly connections: number;
  close(): Promise<void>;
};

const DEV_HTML = '<!doctype html><html><head><script type="module" src="/@vite/client"></script><script type="module" src="/src/main.js"></script></head><body>dev</body></html>';
const DEV_JS = 'import.meta.hot.accept();\n';

async function startDevServer(): Promise<DevServer> {
  const requests: DevServer['requests'] = [];
  const handshakes: DevServer['handshakes'] = [];
  const server = http.createServer((req, res) => {
    requests.push({ url: req.url ?? '', headers: req.headers });
    if (req.url === '/') return void res.writeHead(200, { 'content-type': 'text/html' }).end(DEV_HTML);
    if (req.url === '/src/main.js') return void res.writeHead(200, { 'content-type': 'text/javascript' }).end(DEV_JS);
    res.writeHead(404, { 'content-type': 'text/plain' }).end('dev server: not found');
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (socket, req) => {
    handshakes.push({ url: req.url ?? '', headers: req.headers });
    socket.send(JSON.stringify({ type: 'connected' }));
    socket.on('message', (data) => socket.send(`hmr:${data.toString()}`));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    handshakes,
    get connections() {
      return handshakes.length;
    },
    async close() {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('BFF_SPA_DEV_URL: the SPA from a dev server', () => {
  let dev: DevServer;
  let stack: Stack;
  let cookie: string;
  const sockets: WebSocket[] = [];

  beforeAll(async () => {
    dev = await startDevServer();
    stack = await startStack({ env: { BFF_SPA_DEV_URL: dev.url }, routes: [{ prefix: '/api/public', target: 'ECHO', token: 'none' }] });
    cookie = (await loginThroughGateway(stack.gw.url)).cookieHeader;
  });
  afterAll(async () => {
    for (const socket of sockets) socket.terminate();
    await stack?.close();
    await dev?.close();
  });

  function hmrSocket(path: string, origin: string | undefined): WebSocket {
    const socket = new WebSocket(`${stack.gw.url.replace('http', 'ws')}${path}`, 'vite-hmr', { headers: { Cookie: cookie, ...(origin ? { Origin: origin } : {}) } });
    sockets.push(socket);
    return socket;
  }

  test('/ and /src/main.js come from the dev server, without the session cookie', async () => {
    const before = dev.requests.length;
    const page = await request(stack.gw.url).get('/').set('Accept', 'text/html').set('Cookie', cookie);
    expect(page.status).toBe(200);
    expect(page.text).toBe(DEV_HTML);
    const script = await request(stack.gw.url).get('/src/main.js').set('Cookie', cookie);
    expect(script.status).toBe(200);
    expect(script.text).toBe(DEV_JS);
    expect(script.headers['content-type']).toMatch(/^text\/javascript/);
    const seen = dev.requests.slice(before);
    expect(seen.map((r) => r.url)).toEqual(['/', '/src/main.js']);
    for (const r of seen) expect(r.headers.cookie).toBeUndefined();
  });

  test('a request with Expect: 100-continue reaches the dev server without the cookie and without Expect', async () => {
    const conn = await RawConnection.open(stack.gw.url);
    try {
      const body = 'x'.repeat(10);
      conn.write(`POST /src/upload HTTP/1.1\r\nHost: ${new URL(stack.gw.url).host}\r\nCookie: ${cookie}\r\nExpect: 100-continue\r\nContent-Length: ${body.length}\r\n\r\n`);
      expect((await conn.readResponse({ timeoutMs: 5000 })).status).toBe(100);
      conn.write(body);
      expect((await conn.readResponse({ timeoutMs: 5000 })).status).toBe(404);
    } finally {
      conn.close();
    }
    const seen = dev.requests.filter((r) => r.url === '/src/upload');
    expect(seen).toHaveLength(1);
    expect(seen[0]?.headers.cookie).toBeUndefined();
    expect(seen[0]?.headers.expect).toBeUndefined();
  });

  test('/api still goes to its route and /auth to the gateway, never to the dev server', async () => {
    const before = dev.requests.length;
    const api = await request(stack.gw.url).get('/api/public/items?x=1').set('Accept', 'text/html').set('x-csrf', '1');
    expect(api.status).toBe(200);
    expect((api.body as { url: string }).url).toBe('/api/public/items?x=1');
    expectProblem(await request(stack.gw.url).get('/api/unknown').set('Accept', 'text/html').set('x-csrf', '1'), 404, 'route_not_found');
    const user = await request(stack.gw.url).get('/auth/user').set('Cookie', cookie);
    expect(user.status).toBe(200);
    expect((user.body as { sub: string }).sub).toBe('alice');
    expectProblem(await request(stack.gw.url).get('/auth/user'), 401, 'not_authenticated');
    expect(dev.requests.length).toBe(before);
  });

  test('the HMR WebSocket from the gateway origin reaches the dev server, both ways, without the cookie', async () => {
    const before = dev.connections;
    const socket = hmrSocket('/?token=x', stack.gw.url);
    const greeting = nextMessage(socket);
    expect(await upgradeOutcome(socket)).toBe(101);
    expect(socket.protocol).toBe('vite-hmr');
    expect(JSON.parse(await greeting)).toEqual({ type: 'connected' });
    const reply = nextMessage(socket);
    socket.send('{"type":"custom","event":"ping"}');
    expect(await reply).toBe('hmr:{"type":"custom","event":"ping"}');
    expect(dev.connections).toBe(before + 1);
    const handshake = dev.handshakes[before];
    expect(handshake?.url).toBe('/?token=x');
    expect(handshake?.headers['sec-websocket-protocol']).toBe('vite-hmr');
    expect(handshake?.headers.cookie).toBeUndefined();
    socket.close();
  });

  test('an HMR WebSocket from another origin, or with no Origin, is refused before reaching the dev server', async () => {
    const before = dev.connections;
    expect(await upgradeOutcome(hmrSocket('/?token=x', 'https://evil.example'))).toBe(403);
    expect(await upgradeOutcome(hmrSocket('/?token=x', 'http://localhost:5173'))).toBe(403);
    expect(await upgradeOutcome(hmrSocket('/?token=x', undefined))).toBe(403);
    // Give a wrongly forwarded handshake time to arrive before counting.
    await delay(100);
    expect(dev.connections).toBe(before);
  });

  test('with the dev server down, a navigation is 502 problem+json spa_dev_server_unavailable', async () => {
    const down = await startTestGateway({
      url: await reserveGatewayUrl(),
      issuer: stack.idp.issuer,
      store: 'memory',
      env: { BFF_SPA_DEV_URL: `http://127.0.0.1:${await getFreePort()}` },
    });
    try {
      const res = await request(down.url).get('/orders/42').set('Accept', 'text/html');
      expectProblem(res, 502, 'spa_dev_server_unavailable');
      // The gateway's own endpoints do not depend on the dev server.
      expectProblem(await request(down.url).get('/auth/user'), 401, 'not_authenticated');
    } finally {
      await down.close();
    }
  });
});
