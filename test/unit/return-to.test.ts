import { describe, expect, test } from '@jest/globals';
import { safeReturnTo } from '../../src/http/return-to.ts';

const ORIGIN = 'https://app.example.com';

describe('safeReturnTo keeps same-origin relative paths', () => {
  test.each([
    ['/', '/'],
    ['/dashboard', '/dashboard'],
    ['/orders/42?tab=items&sort=desc', '/orders/42?tab=items&sort=desc'],
    ['/orders/42#details', '/orders/42#details'],
    ['/a/b?x=1#frag', '/a/b?x=1#frag'],
    ['/search?q=caf%C3%A9', '/search?q=caf%C3%A9'],
    ['/search?q=%2F%2F', '/search?q=%2F%2F'],
    ['/path?next=//elsewhere', '/path?next=//elsewhere'],
  ])('%j → %j', (value, expected) => {
    expect(safeReturnTo(value, ORIGIN)).toBe(expected);
  });

  test('a path just under the length limit is kept', () => {
    const long = '/' + 'a'.repeat(2047);
    expect(safeReturnTo(long, ORIGIN)).toBe(long);
  });
});

describe('safeReturnTo falls back to / for hostile values', () => {
  const hostile: ReadonlyArray<readonly [string, unknown]> = [
    ['scheme-relative', '//evil.com'],
    ['scheme-relative with path', '//evil.com/login'],
    ['triple slash', '///evil.com'],
    ['slash backslash', '/\\evil.com'],
    ['double backslash', '\\\\evil.com'],
    ['backslash slash', '\\/evil.com'],
    ['absolute https', 'https://evil.com'],
    ['absolute same-looking origin on another port', 'https://app.example.com:444/x'],
    ['absolute http, other origin', 'http://127.0.0.1:1/x'],
    ['absolute same origin', 'https://app.example.com/dashboard'],
    ['javascript:', 'javascript:alert(1)'],
    ['javascript: in upper case', 'JaVaScRiPt:alert(1)'],
    ['data:', 'data:text/html,x'],
    ['encoded slashes after /', '/%2F%2Fevil.com'],
    ['encoded slashes, lower case', '/%2f%2fevil.com'],
    ['encoded slashes without leading /', '%2F%2Fevil.com'],
    ['encoded backslash', '/%5Cevil.com'],
    ['encoded backslash, lower case', '/%5cevil.com'],
    ['double-encoded slashes', '/%252F%252Fevil.com'],
    ['triple-encoded slashes', '/%25252F%25252Fevil.com'],
    ['tab between slashes', '/\t/evil.com'],
    ['newline between slashes', '/\n/evil.com'],
    ['encoded tab', '/%09/evil.com'],
    ['encoded newline', '/%0a/evil'],
    ['encoded carriage return', '/%0D/evil'],
    ['NUL', '/\u0000/evil.com'],
    ['encoded NUL', '/%00/evil.com'],
    ['malformed escape', '/%'],
    ['malformed escape mid-path', '/a%zzb'],
    ['empty', ''],
    ['very long', '/' + 'a'.repeat(5000)],
    ['relative without slash', 'dashboard'],
    ['userinfo trick', '/@evil.com'.replace('/', '//')],
  ];

  test('the list is long enough to mean something', () => {
    expect(hostile.length).toBeGreaterThanOrEqual(20);
  });

  test.each(hostile)('%s', (_name, value) => {
    expect(safeReturnTo(value, ORIGIN)).toBe('/');
  });

  test.each([
    ['array', ['/dashboard']],
    ['undefined', undefined],
    ['null', null],
    ['number', 42],
    ['object', { toString: () => '/dashboard' }],
  ])('non-string (%s)', (_name, value) => {
    expect(safeReturnTo(value, ORIGIN)).toBe('/');
  });
});

describe('safeReturnTo never yields a value a browser resolves to another origin', () => {
  // The result goes into a Location header: a browser resolves it against the gateway's
  // URL, so whatever it returns must still land on the gateway's origin.
  function expectSameOrigin(value: string): void {
    const result = safeReturnTo(value, ORIGIN);
    expect(result.startsWith('/')).toBe(true);
    expect(result.startsWith('//')).toBe(false);
    expect(new URL(result, `${ORIGIN}/auth/callback`).origin).toBe(ORIGIN);
  }

  test.each(['//evil.com', '/%2F%2Fevil.com', '/\\evil.com', '/\t/evil.com', '/./%2F/evil.com', '/a/../b'])('%j', expectSameOrigin);

  // Dot segments that collapse into `//` once a URL parser resolves them.
  test.each(['/.//evil.com', '/a/..//evil.com', '/../..//evil.com', '/%2e%2e//evil.com', '/%2e//evil.com', '/x/%2E%2E//evil.com'])('%j (dot segments collapsing into //)', expectSameOrigin);
});
