import { afterAll, describe, expect, test } from '@jest/globals';
import express from 'express';
import request from 'supertest';
import { parseRate, readAbuseLimits } from '../../src/config/abuse-limits.ts';
import { clientKey, rateLimit, rateLimitKey, retryAfterSeconds } from '../../src/http/rate-limit.ts';
import { createLogger } from '../../src/ops/logger.ts';
import { MemoryKeyValueStore } from '../../src/store/kv.ts';

describe('parseRate', () => {
  test.each([
    ['30/1m', { limit: 30, windowMs: 60_000 }],
    ['100/10s', { limit: 100, windowMs: 10_000 }],
    ['5/1h', { limit: 5, windowMs: 3_600_000 }],
    ['30/60', { limit: 30, windowMs: 60_000 }],
    [' 7 / 2m ', { limit: 7, windowMs: 120_000 }],
  ])('%j → %j', (text, rate) => {
    expect(parseRate(text)).toEqual(rate);
  });

  test('off turns the limit off', () => {
    expect(parseRate('off')).toBe('off');
    expect(parseRate('OFF')).toBe('off');
  });

  test.each(['0/1m', '30', '30/0s', '30/2d', 'abc', '-1/1m', '30/1x', '1.5/1m', ''])('%j is invalid', (text) => {
    expect(parseRate(text)).toBe('invalid');
  });
});

describe('readAbuseLimits', () => {
  const read = (env: Record<string, string>) => {
    const problems: string[] = [];
    const limits = readAbuseLimits((name) => env[name], problems);
    return { limits, problems };
  };

  test('safe defaults: both rate limits on, 16 KiB headers, 8 KiB URLs, 20 s headers, 60 s body idle, 65 s keep-alive, 64 KiB buffered bodies, 16 streams per client', () => {
    expect(read({})).toEqual({
      problems: [],
      limits: {
        rateLimits: { login: { limit: 30, windowMs: 60_000 }, callback: { limit: 30, windowMs: 60_000 } },
        connectionLimits: { maxHeaderBytes: 16_384, maxUrlLength: 8192, headersTimeoutMs: 20_000, bodyIdleTimeoutMs: 60_000, keepAliveTimeoutMs: 65_000 },
        proxyLimits: { bufferBytes: 65_536, maxStreamsPerClient: 16 },
      },
    });
  });

  test('every value can be set, and a rate limit turned off', () => {
    const { limits, problems } = read({
      BFF_RATE_LIMIT_LOGIN: '10/10s',
      BFF_RATE_LIMIT_CALLBACK: 'off',
      BFF_MAX_HEADER_SIZE: '32768',
      BFF_MAX_URL_LENGTH: '2048',
      BFF_HEADERS_TIMEOUT: '5s',
      BFF_BODY_IDLE_TIMEOUT: '2m',
      BFF_KEEPALIVE_TIMEOUT: '5',
      BFF_PROXY_BUFFER_BYTES: '0',
      BFF_PROXY_MAX_STREAMS_PER_CLIENT: '2',
    });
    expect(problems).toEqual([]);
    expect(limits.proxyLimits).toEqual({ bufferBytes: 0, maxStreamsPerClient: 2 });
    expect(limits.rateLimits).toEqual({ login: { limit: 10, windowMs: 10_000 } });
    expect(limits.connectionLimits).toEqual({ maxHeaderBytes: 32_768, maxUrlLength: 2048, headersTimeoutMs: 5000, bodyIdleTimeoutMs: 120_000, keepAliveTimeoutMs: 5000 });
  });

  test('every invalid value is reported by its name, never silently replaced', () => {
    const { problems } = read({
      BFF_RATE_LIMIT_LOGIN: '30 per minute',
      BFF_RATE_LIMIT_CALLBACK: '0/1m',
      BFF_MAX_HEADER_SIZE: '16k',
      BFF_HEADERS_TIMEOUT: '0s',
      BFF_BODY_IDLE_TIMEOUT: 'forever',
      BFF_KEEPALIVE_TIMEOUT: '2h',
      BFF_PROXY_BUFFER_BYTES: '64k',
      BFF_PROXY_MAX_STREAMS_PER_CLIENT: '0',
    });
    expect(problems.map((p) => p.slice(0, p.indexOf(':')))).toEqual([
      'BFF_RATE_LIMIT_LOGIN',
      'BFF_RATE_LIMIT_CALLBACK',
      'BFF_MAX_HEADER_SIZE',
      'BFF_HEADERS_TIMEOUT',
      'BFF_BODY_IDLE_TIMEOUT',
      'BFF_KEEPALIVE_TIMEOUT',
      'BFF_PROXY_BUFFER_BYTES',
      'BFF_PROXY_MAX_STREAMS_PER_CLIENT',
    ]);
  });

  test("a URL limit that Node's header limit would always pre-empt is refused", () => {
    expect(read({ BFF_MAX_HEADER_SIZE: '8192', BFF_MAX_URL_LENGTH: '8192' }).problems).toEqual([expect.stringMatching(/^BFF_MAX_URL_LENGTH: must be smaller than BFF_MAX_HEADER_SIZE/)]);
  });
});

describe('clientKey', () => {
  test.each([
    ['203.0.113.7', '203.0.113.7'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002:ffff::1', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::9', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['64:ff9b::192.0.2.33', '64:ff9b:0:0::/64'],
    [undefined, 'unknown'],
    ['', 'unknown'],
    ['not-an-address', 'unknown'],
  ])('%j counts as %j', (ip, key) => {
    expect(clientKey(ip)).toBe(key);
  });

  test('addresses of one /64 share a budget; the next /64 has its own', () => {
    expect(clientKey('2001:db8:1:2:aaaa::1')).toBe(clientKey('2001:db8:1:2:bbbb::2'));
    expect(clientKey('2001:db8:1:3::1')).not.toBe(clientKey('2001:db8:1:2::1'));
  });
});

describe('retryAfterSeconds', () => {
  /** The limiter's own rule: a request is allowed when the weighted estimate, itself included, is within the limit (give or take rounding). */
  function allowedAt(limit: number, windowMs: number, current: number, previous: number, elapsed: number, afterMs: number): boolean {
    const at = elapsed * windowMs + afterMs;
    if (at < windowMs) return previous * (1 - at / windowMs) + current + 1 <= limit + 1e-9;
    if (at < 2 * windowMs) return current * (1 - (at - windowMs) / windowMs) + 1 <= limit + 1e-9;
    return true;
  }

  test('waiting Retry-After is enough, and a second less would not have been (every refused state on a grid)', () => {
    let checked = 0;
    for (const [limit, windowMs] of [
      [1, 1000],
      [3, 10_000],
      [30, 60_000],
      [100, 3_600_000],
    ] as const) {
      for (let previous = 0; previous <= limit * 3; previous += Math.max(1, Math.floor(limit / 3))) {
        for (let current = 1; current <= limit * 3; current += Math.max(1, Math.floor(limit / 3))) {
          for (const elapsed of [0, 0.1, 0.5, 0.9, 0.999]) {
            if (previous * (1 - elapsed) + current <= limit) continue; // this request was allowed
            const seconds = retryAfterSeconds({ limit, windowMs }, current, previous, elapsed);
            expect(seconds).toBeGreaterThanOrEqual(1);
            expect([limit, windowMs, current, previous, elapsed, allowedAt(limit, windowMs, current, previous, elapsed, seconds * 1000)]).toEqual([limit, windowMs, current, previous, elapsed, true]);
            if (seconds > 1) expect(allowedAt(limit, windowMs, current, previous, elapsed, (seconds - 1) * 1000 - 1)).toBe(false);
            checked += 1;
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(100);
  });
});

describe('rateLimit middleware (memory store, controlled clock)', () => {
  const kv = new MemoryKeyValueStore();
  afterAll(async () => {
    await kv.close();
  });

  function app(limit: number, windowMs: number, clock: { now: number }) {
    const server = express();
    server.set('trust proxy', 'loopback');
    server.use('/auth/login', rateLimit({ name: 'login', limit, windowMs, kv, logger: createLogger('silent'), now: () => clock.now }));
    server.get('/auth/login', (_req, res) => {
      res.status(204).end();
    });
    return server;
  }

  test('the limit answers 429 problem+json with Retry-After, per address, and lets the address in again later', async () => {
    const clock = { now: 1_000_000 * 10_000 };
    const server = app(3, 10_000, clock);
    const hit = (ip: string) => request(server).get('/auth/login').set('X-Forwarded-For', ip);
    for (let i = 0; i < 3; i++) expect((await hit('198.51.100.1')).status).toBe(204);
    const refused = await hit('198.51.100.1');
    expect(refused.status).toBe(429);
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(refused.body).toMatchObject({ status: 429, code: 'rate_limited', title: 'Too Many Requests' });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // Another address has its own budget.
    expect((await hit('198.51.100.2')).status).toBe(204);
    clock.now += Number(refused.headers['retry-after']) * 1000;
    expect((await hit('198.51.100.1')).status).toBe(204);
  });

  test('no burst of twice the limit across a window boundary (sliding, not fixed)', async () => {
    const windowMs = 10_000;
    const clock = { now: 2_000_000 * windowMs + windowMs - 100 };
    const server = app(3, windowMs, clock);
    for (let i = 0; i < 3; i++) expect((await request(server).get('/auth/login')).status).toBe(204);
    clock.now += 200; // just past the boundary: a fixed window would allow 3 more
    expect((await request(server).get('/auth/login')).status).toBe(429);
  });

  test('refused requests count in the same two counters per address (one per window), never in new keys', async () => {
    const windowMs = 10_000;
    const clock = { now: 3_000_000 * windowMs };
    const server = app(2, windowMs, clock);
    for (let i = 0; i < 50; i++) await request(server).get('/auth/login').set('X-Forwarded-For', '192.0.2.9');
    clock.now += windowMs;
    for (let i = 0; i < 50; i++) await request(server).get('/auth/login').set('X-Forwarded-For', '192.0.2.9');
    const window = Math.floor(clock.now / windowMs);
    expect(await kv.get(rateLimitKey('login', '192.0.2.9', window))).toBe('50');
    expect(await kv.get(rateLimitKey('login', '192.0.2.9', window - 1))).toBe('50');
    expect(await kv.get(rateLimitKey('login', '192.0.2.9', window - 2))).toBeUndefined();
  });
});
