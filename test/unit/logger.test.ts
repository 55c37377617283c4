import { Writable } from 'node:stream';
import { describe, expect, test } from '@jest/globals';
import { accessLogger, createLogger, REDACTED_PATHS, terminalHeadline } from '../../src/ops/logger.ts';

function capture(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  return { lines, stream };
}

const SECRET = 'S3cr3t-value-that-must-not-appear';

describe('redaction, the second line of defence', () => {
  test.each([
    ['a token at the top level', { access_token: SECRET }],
    ['a token one object deep', { tokens: { refresh_token: SECRET } }],
    ['a camel-case token two objects deep', { session: { user: { idToken: SECRET } } }],
    ['an authorization code', { query: { code: SECRET } }],
    ['a PKCE verifier', { tx: { codeVerifier: SECRET } }],
    ['a client secret', { client_secret: SECRET }],
    ['a logout token', { body: { logout_token: SECRET } }],
    ['the session secrets', { config: { sessionSecrets: [SECRET] } }],
    ['a Redis URL with its password', { redisUrl: `redis://:${SECRET}@redis:6379` }],
    ['request headers: cookie', { req: { headers: { cookie: `bff=${SECRET}` } } }],
    ['request headers: authorization', { req: { headers: { authorization: `Bearer ${SECRET}` } } }],
    ['response headers: set-cookie', { res: { headers: { 'set-cookie': [`bff=${SECRET}`] } } }],
    ['a bare headers object', { headers: { 'proxy-authorization': `Basic ${SECRET}` } }],
  ])('%s is redacted at trace level', (_name, fields) => {
    const { lines, stream } = capture();
    createLogger('trace', stream).trace(fields, 'message');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('[redacted]');
    expect(lines[0]).not.toContain(SECRET);
  });

  test('harmless fields stay readable', () => {
    const { lines, stream } = capture();
    createLogger('debug', stream).debug({ event: 'refresh', outcome: 'success', route: '/api/orders', req: { headers: { 'user-agent': 'curl' } } }, 'tokens refreshed');
    expect(JSON.parse(lines[0] as string)).toMatchObject({ event: 'refresh', outcome: 'success', route: '/api/orders', req: { headers: { 'user-agent': 'curl' } } });
  });

  test('every path is valid for pino (an invalid one throws at construction)', () => {
    expect(REDACTED_PATHS.length).toBeGreaterThan(50);
    expect(() => createLogger('info', capture().stream)).not.toThrow();
  });
});

test('the access log child keeps header redaction (its own, shorter list)', () => {
  const { lines, stream } = capture();
  accessLogger(createLogger('info', stream)).info(
    { req: { headers: { cookie: `bff=${SECRET}`, authorization: `Bearer ${SECRET}` } }, res: { headers: { 'set-cookie': SECRET } } },
    'request completed',
  );
  expect(lines[0]).toContain('[redacted]');
  expect(lines[0]).not.toContain(SECRET);
});

describe('the terminal headline (npm run demo, a gateway started in a terminal)', () => {
  test('an access line reads method, path, status and time', () => {
    expect(terminalHeadline({ msg: 'request completed', req: { method: 'GET', path: '/api/echo/x' }, res: { statusCode: 200 }, responseTime: 3 }, 'msg')).toBe('GET /api/echo/x 200 3 ms');
  });

  test('a failed or aborted request keeps its message', () => {
    expect(terminalHeadline({ msg: 'request aborted', req: { method: 'POST', path: '/api/up' }, res: { statusCode: 499 } }, 'msg')).toBe('POST /api/up 499 (request aborted)');
  });

  test('any other line is its message', () => {
    expect(terminalHeadline({ msg: 'bff-gateway listening', url: 'http://127.0.0.1:3000' }, 'msg')).toBe('bff-gateway listening');
  });
});
