import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from '@jest/globals';
import { IdpInvalidResponseError, IdpRefusedError, IdpUnavailableError, isClientRefusal, type IdpError } from '../../src/oidc/errors.ts';
import { refreshFailureEndsSession } from '../../src/tokens/refresh-policy.ts';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? sources(path) : entry.name.endsWith('.ts') ? [path] : [];
  });
}

describe("src/oidc owns the provider's errors", () => {
  test('no module outside src/oidc names an openid-client error class', () => {
    const offenders = sources(SRC)
      .filter((path) => !relative(SRC, path).startsWith('oidc/'))
      .filter((path) => /\b(?:ResponseBodyError|WWWAuthenticateChallengeError|AuthorizationResponseError|ClientError|OperationProcessingError)\b/.test(readFileSync(path, 'utf8')))
      .map((path) => relative(SRC, path));
    expect(offenders).toEqual([]);
  });
});

describe('what a failed refresh means for the session', () => {
  const refused = (error: string, status = 400): IdpError => new IdpRefusedError('token', error, undefined, status);
  const CASES: Array<[string, 'ends' | 'keeps', IdpError]> = [
    ['invalid_grant', 'ends', refused('invalid_grant')],
    ['invalid_request (LemonLDAP::NG)', 'ends', refused('invalid_request')],
    ['unauthorized_client', 'ends', refused('unauthorized_client')],
    ['invalid_client with 401', 'ends', refused('invalid_client', 401)],
    ['invalid_scope', 'ends', refused('invalid_scope')],
    ['temporarily_unavailable', 'keeps', refused('temporarily_unavailable')],
    ['slow_down', 'keeps', refused('slow_down')],
    ['an OAuth error with 429', 'keeps', refused('rate_limited', 429)],
    ['an OAuth error with 503', 'keeps', refused('server_error', 503)],
    ['a transport failure', 'keeps', new IdpUnavailableError('ECONNREFUSED')],
    ['a 500', 'keeps', new IdpUnavailableError('http_500', 500)],
    ['an invalid response', 'keeps', new IdpInvalidResponseError('OAUTH_RESPONSE_IS_NOT_JSON', 400)],
  ];
  test.each(CASES)('%s %s the session', (_name, fate, failure) => {
    expect(refreshFailureEndsSession(failure)).toBe(fate === 'ends');
  });

  test('a client refusal is invalid_client, unauthorized_client or any 401', () => {
    expect(isClientRefusal(new IdpRefusedError('token', 'invalid_client', undefined, 400))).toBe(true);
    expect(isClientRefusal(new IdpRefusedError('token', 'unauthorized_client', undefined, 400))).toBe(true);
    expect(isClientRefusal(new IdpRefusedError('token', 'invalid_request', undefined, 401))).toBe(true);
    expect(isClientRefusal(new IdpRefusedError('token', 'invalid_grant', undefined, 400))).toBe(false);
  });
});
