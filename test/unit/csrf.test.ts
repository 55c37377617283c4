import { describe, expect, test } from '@jest/globals';
import { IncomingMessage, type IncomingHttpHeaders } from 'node:http';
import { Socket } from 'node:net';
import { crossSiteProblem, csrfProblem } from '../../src/http/csrf.ts';

const ORIGIN = 'https://app.example.com';
const HEADER = 'x-csrf';

/** A real IncomingMessage (never connected) carrying the given headers, as Node would parse them: lower-case names. */
function request(headers: IncomingHttpHeaders): IncomingMessage {
  const req = new IncomingMessage(new Socket());
  req.headers = headers;
  return req;
}

describe('csrfProblem: the CSRF header', () => {
  test('missing header → 403 csrf_header_missing naming the header', () => {
    const problem = csrfProblem(request({}), ORIGIN, HEADER);
    expect(problem?.status).toBe(403);
    expect(problem?.code).toBe('csrf_header_missing');
    expect(problem?.message).toContain(HEADER);
  });

  test.each(['0', 'true', '', ' 1', '1 ', '11', '1, 1', 'yes'])('header value %j other than "1" → 403 csrf_header_missing', (value) => {
    const problem = csrfProblem(request({ [HEADER]: value }), ORIGIN, HEADER);
    expect(problem?.status).toBe(403);
    expect(problem?.code).toBe('csrf_header_missing');
  });

  test('the header is checked under the configured name', () => {
    expect(csrfProblem(request({ 'x-requested-with': '1' }), ORIGIN, 'x-requested-with')).toBeUndefined();
    expect(csrfProblem(request({ [HEADER]: '1' }), ORIGIN, 'x-requested-with')?.code).toBe('csrf_header_missing');
  });

  test('header "1" and no Origin or Sec-Fetch-Site passes', () => {
    expect(csrfProblem(request({ [HEADER]: '1' }), ORIGIN, HEADER)).toBeUndefined();
  });

  test('a missing header is reported even when the request is also cross-site', () => {
    expect(csrfProblem(request({ origin: 'https://evil.example' }), ORIGIN, HEADER)?.code).toBe('csrf_header_missing');
  });
});

describe('csrfProblem: cross-site signals with the header present', () => {
  test.each([
    ['cross-site Origin', { origin: 'https://evil.example' }],
    ['Origin null', { origin: 'null' }],
    ['Origin with another scheme', { origin: 'http://app.example.com' }],
    ['Origin with another port', { origin: 'https://app.example.com:8443' }],
    ['Origin of a sibling subdomain', { origin: 'https://api.app.example.com' }],
    ['Sec-Fetch-Site cross-site', { 'sec-fetch-site': 'cross-site' }],
    ['Sec-Fetch-Site same-site', { 'sec-fetch-site': 'same-site' }],
    ['Sec-Fetch-Site unknown value', { 'sec-fetch-site': 'bogus' }],
    ['same Origin but Sec-Fetch-Site cross-site', { origin: ORIGIN, 'sec-fetch-site': 'cross-site' }],
    ['Sec-Fetch-Site same-origin but cross-site Origin', { origin: 'https://evil.example', 'sec-fetch-site': 'same-origin' }],
  ])('%s → 403 cross_site_request', (_name, headers) => {
    const problem = csrfProblem(request({ [HEADER]: '1', ...headers }), ORIGIN, HEADER);
    expect(problem?.status).toBe(403);
    expect(problem?.code).toBe('cross_site_request');
  });

  test.each([
    ['same-origin Origin', { origin: ORIGIN }],
    ['Sec-Fetch-Site same-origin', { 'sec-fetch-site': 'same-origin' }],
    ['Sec-Fetch-Site none (typed in the address bar)', { 'sec-fetch-site': 'none' }],
    ['same Origin and Sec-Fetch-Site same-origin', { origin: ORIGIN, 'sec-fetch-site': 'same-origin' }],
  ])('%s passes', (_name, headers) => {
    expect(csrfProblem(request({ [HEADER]: '1', ...headers }), ORIGIN, HEADER)).toBeUndefined();
  });
});

describe('crossSiteProblem alone (no header requirement)', () => {
  test('passes without any header', () => {
    expect(crossSiteProblem(request({}), ORIGIN)).toBeUndefined();
  });

  test('passes same-origin signals', () => {
    expect(crossSiteProblem(request({ origin: ORIGIN, 'sec-fetch-site': 'same-origin' }), ORIGIN)).toBeUndefined();
  });

  test.each([{ origin: 'https://evil.example' }, { origin: 'null' }, { 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' }])('refuses %j', (headers) => {
    const problem = crossSiteProblem(request(headers), ORIGIN);
    expect(problem?.status).toBe(403);
    expect(problem?.code).toBe('cross_site_request');
  });

  test('compares against the configured origin, not a fixed one', () => {
    expect(crossSiteProblem(request({ origin: 'http://127.0.0.1:3000' }), 'http://127.0.0.1:3000')).toBeUndefined();
    expect(crossSiteProblem(request({ origin: ORIGIN }), 'http://127.0.0.1:3000')?.code).toBe('cross_site_request');
  });
});
