import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from '@jest/globals';
import { IdpRefusedError, IdpUnavailableError } from '../../src/oidc/errors.ts';
import { PROBLEM_CATALOGUE, problemFor, problems, STATUS_TITLES, type ProblemCode } from '../../src/http/problem-catalogue.ts';
import { writeRawProblem } from '../../src/http/problem.ts';
import { SessionStoreError, StoreUnavailableError } from '../../src/store/errors.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CODES = Object.keys(PROBLEM_CATALOGUE) as ProblemCode[];
/**
 * Every code has an underscore, or is one of the few one-word codes named here: that is how the README's
 * list is told apart from the other words it quotes (`code`, `iss`).
 */
const ONE_WORD_CODES = new Set(['forbidden']);
const CODE_SHAPE = { test: (word: string): boolean => /^[a-z]+(?:_[a-z]+)+$/.test(word) || ONE_WORD_CODES.has(word) };

/** The codes quoted in the README's paragraph that starts "Errors from the gateway are …" (it runs to the next blank line). */
function readmeCodes(): string[] {
  const readme = readFileSync(resolve(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('Errors from the gateway are `application/problem+json`');
  expect(start).toBeGreaterThanOrEqual(0);
  const end = readme.indexOf('\n\n', start);
  const paragraph = readme.slice(start, end < 0 ? undefined : end);
  return [...paragraph.matchAll(/`([^`]+)`/g)].map((m) => m[1] as string).filter((word) => CODE_SHAPE.test(word));
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

describe('the catalogue and the README', () => {
  test('every code has the shape the README check relies on', () => {
    expect(CODES.filter((code) => !CODE_SHAPE.test(code))).toEqual([]);
  });

  test('every catalogued code is in the README list', () => {
    const listed = new Set(readmeCodes());
    expect(CODES.filter((code) => !listed.has(code))).toEqual([]);
  });

  test('every code the README lists is in the catalogue', () => {
    expect(readmeCodes().filter((code) => !(code in PROBLEM_CATALOGUE))).toEqual([]);
  });
});

describe('the catalogue', () => {
  test('each title is the standard title of its status', () => {
    for (const code of CODES) expect([code, PROBLEM_CATALOGUE[code].title]).toEqual([code, STATUS_TITLES[PROBLEM_CATALOGUE[code].status]]);
  });

  test('problems are made only by the catalogue', () => {
    const makers = sourceFiles(resolve(ROOT, 'src'))
      .filter((path) => readFileSync(path, 'utf8').includes('new HttpProblem('))
      .map((path) => relative(ROOT, path));
    expect(makers).toEqual(['src/http/problem-catalogue.ts']);
  });

  test('each constructor answers with its catalogued status and title', () => {
    const made = [
      problems.notAuthenticated(),
      problems.csrfMissing('x-csrf'),
      problems.methodNotAllowed('DELETE', '/api/orders', ['GET', 'POST']),
      problems.rateLimited('login', 30, 60_000, 7),
      problems.upstreamBusy(250),
      problems.webSocketNotEnabled('/api/chat'),
    ];
    for (const problem of made) {
      expect(problem.status).toBe(PROBLEM_CATALOGUE[problem.code].status);
      expect(problem.title).toBe(PROBLEM_CATALOGUE[problem.code].title);
    }
    expect(made[1]?.message).toBe('This request must carry the header "x-csrf: 1" (send it with fetch from the same origin).');
    expect(made[2]?.headers).toEqual({ Allow: 'GET, POST' });
    expect(made[3]?.message).toBe('Too many login requests from this address (at most 30 per 60 s); retry in 7 s.');
    expect(made[3]?.headers).toEqual({ 'Retry-After': '7' });
  });
});

describe('problemFor: any thrown error becomes the problem to answer', () => {
  test('a problem is answered as it is', () => {
    const problem = problems.routeNotFound('/api/x');
    expect(problemFor(problem)).toBe(problem);
  });

  test('failing dependencies answer with their own codes and Retry-After', () => {
    expect(problemFor(new SessionStoreError(new Error('down')))).toMatchObject({ status: 503, code: 'session_store_unavailable', headers: { 'Retry-After': '5' } });
    expect(problemFor(new StoreUnavailableError(new Error('down')))).toMatchObject({ status: 503, code: 'store_unavailable', headers: { 'Retry-After': '5' } });
    expect(problemFor(new IdpUnavailableError())).toMatchObject({ status: 503, code: 'idp_unavailable', headers: { 'Retry-After': '5' } });
  });

  test('a client error raised by Express keeps its 4xx status as bad_request', () => {
    expect(problemFor(Object.assign(new Error('too large'), { status: 413 }))).toMatchObject({ status: 413, code: 'bad_request', title: 'Content Too Large' });
    expect(problemFor(Object.assign(new Error('range'), { status: 416 }))).toMatchObject({ status: 416, code: 'bad_request', title: 'Error' });
    expect(problemFor(new IdpRefusedError('token', 'invalid_grant', 'secret words', 400))).toMatchObject({ status: 400, code: 'bad_request' });
  });

  test('anything else is internal_error, naming nothing of the error', () => {
    const problem = problemFor(Object.assign(new Error('ECONNREFUSED 10.0.0.7:6379'), { status: 502 }));
    expect(problem).toMatchObject({ status: 500, code: 'internal_error' });
    expect(problem.message).not.toContain('10.0.0.7');
    expect(problemFor('a string')).toMatchObject({ status: 500, code: 'internal_error' });
  });

  test('a WebSocket that could not be opened is 503 only when the session store failed', () => {
    expect(problems.webSocketNotOpened(problemFor(new SessionStoreError(new Error('down'))))).toMatchObject({ status: 503, code: 'session_store_unavailable', headers: {} });
    expect(problems.webSocketNotOpened(problemFor(new Error('bug')))).toMatchObject({ status: 500, code: 'internal_error' });
    expect(problems.webSocketNotOpened(problemFor(new IdpUnavailableError()))).toMatchObject({ status: 500, code: 'internal_error' });
  });
});

describe('writeRawProblem: a problem written to a bare connection', () => {
  test('a complete HTTP/1.1 answer, closed, with the problem headers', async () => {
    const socket = new PassThrough();
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    const ended = new Promise((done) => socket.on('end', done));
    writeRawProblem(socket, problems.tooManyUploads(2));
    await ended;
    const [head = '', body = ''] = Buffer.concat(chunks).toString('latin1').split('\r\n\r\n');
    const lines = head.split('\r\n');
    expect(lines[0]).toBe('HTTP/1.1 429 Too Many Requests');
    expect(lines.slice(1)).toEqual([
      'Content-Type: application/problem+json',
      `Content-Length: ${Buffer.byteLength(body)}`,
      'Cache-Control: no-store',
      'X-Content-Type-Options: nosniff',
      'Retry-After: 5',
      'Connection: close',
    ]);
    expect(JSON.parse(body)).toEqual({
      type: 'about:blank',
      title: 'Too Many Requests',
      status: 429,
      detail: 'At most 2 large uploads may stream at once from one client; retry when one has finished.',
      code: 'too_many_uploads',
    });
  });

  test('nothing is written to a connection already gone', () => {
    const socket = new PassThrough();
    socket.destroy();
    expect(() => writeRawProblem(socket, problems.notHttp())).not.toThrow();
  });
});
