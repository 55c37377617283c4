import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { httpObserver } from '../../src/ops/http-observer.ts';
import { createLogger } from '../../src/ops/logger.ts';
import { GatewayMetrics } from '../../src/ops/metrics.ts';
import { routeLabeller } from '../../src/ops/request-facts.ts';

// The access log line and the request metrics, on a plain Node server: every way a response can end.
const lines: Record<string, unknown>[] = [];
const stream = new Writable({
  write(chunk: Buffer, _encoding, done) {
    for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
    done();
  },
});
const metrics = new GatewayMetrics();
const observe = httpObserver({ logger: createLogger('info', stream), metrics, label: routeLabeller(['/api/orders']), logSub: false });
let onAbortSeen: () => void = () => undefined;
const aborted = new Promise<void>((resolve) => (onAbortSeen = resolve));

const server = http.createServer((req, res) => {
  observe(req, res);
  if (req.url?.startsWith('/api/orders/broken')) {
    res.statusCode = 502;
    res.end('{}');
  } else if (req.url?.startsWith('/api/orders/hang')) {
    res.once('close', () => setImmediate(onAbortSeen));
  } else {
    // The proxy rewrites req.url before the response ends; the log must keep the path as received.
    req.url = '/upstream/path';
    res.end('ok');
  }
});
let base = '';

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const lineFor = (path: string): Record<string, unknown> | undefined => lines.find((line) => (line.req as { path?: string } | undefined)?.path === path);

async function settled(path: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 100 && lineFor(path) === undefined; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  const line = lineFor(path);
  if (line === undefined) throw new Error(`no access log line for ${path}`);
  return line;
}

describe('the access log line', () => {
  test('a completed request: path as received without its query, the caller’s plain request id, info level', async () => {
    const res = await fetch(`${base}/api/orders/7?code=SECRET-CODE&state=abc`, { headers: { 'x-request-id': 'trace-1' } });
    expect(res.headers.get('x-request-id')).toBe('trace-1');
    await res.text();
    const line = await settled('/api/orders/7');
    expect(line).toMatchObject({
      level: 30,
      msg: 'request completed',
      reqId: 'trace-1',
      req: { id: 'trace-1', method: 'GET', path: '/api/orders/7' },
      res: { statusCode: 200 },
      route: '/api/orders',
      session: false,
    });
    expect(line.responseTime).toEqual(expect.any(Number));
    expect(line).not.toHaveProperty('upstreamTime');
    expect(JSON.stringify(lines)).not.toContain('SECRET-CODE');
  });

  test('a hostile request id is replaced by a fresh one, in the header and the log alike', async () => {
    const res = await fetch(`${base}/elsewhere`, { headers: { 'x-request-id': 'bad id\twith spaces' } });
    await res.text();
    const id = res.headers.get('x-request-id');
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(await settled('/elsewhere')).toMatchObject({ reqId: id, route: 'other' });
  });

  test('a 5xx is an error-level "request errored" line', async () => {
    await (await fetch(`${base}/api/orders/broken`)).text();
    expect(await settled('/api/orders/broken')).toMatchObject({ level: 50, msg: 'request errored', res: { statusCode: 502 } });
  });

  test('a client that leaves before the answer: "request aborted", counted as aborted', async () => {
    const controller = new AbortController();
    const gone = fetch(`${base}/api/orders/hang`, { signal: controller.signal }).catch(() => 'aborted');
    await new Promise((resolve) => setTimeout(resolve, 100));
    controller.abort();
    expect(await gone).toBe('aborted');
    await aborted;
    expect(await settled('/api/orders/hang')).toMatchObject({ level: 30, msg: 'request aborted' });
    const exposition = await metrics.registry.metrics();
    expect(exposition).toContain('bff_http_requests_total{route="/api/orders",status_class="aborted"} 1');
    expect(exposition).toContain('bff_http_requests_total{route="/api/orders",status_class="2xx"} 1');
    expect(exposition).toContain('bff_http_requests_total{route="/api/orders",status_class="5xx"} 1');
  });
});
