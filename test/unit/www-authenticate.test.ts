import { describe, expect, test } from '@jest/globals';
import { insufficientUserAuthentication, parseChallenges } from '../../src/policy/www-authenticate.ts';

describe('WWW-Authenticate parsing (RFC 9110 §11.6.1)', () => {
  test('the RFC 9470 example', () => {
    expect(parseChallenges('Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="myACR"')).toEqual([
      {
        scheme: 'bearer',
        params: { error: 'insufficient_user_authentication', error_description: 'A different authentication level is required', acr_values: 'myACR' },
      },
    ]);
  });

  test("RFC 9110's example of two challenges, with an escaped quote and commas in a quoted string", () => {
    expect(parseChallenges('Newauth realm="apps", type=1, title="Login to \\"apps\\", please", Basic realm="simple"')).toEqual([
      { scheme: 'newauth', params: { realm: 'apps', type: '1', title: 'Login to "apps", please' } },
      { scheme: 'basic', params: { realm: 'simple' } },
    ]);
  });

  test('odd spacing: around "=", after commas, tabs, empty list elements', () => {
    expect(parseChallenges('  BEARER   Error = "insufficient_user_authentication" ,,\tmax_age=300 ,  acr_values =  "a b"  ')).toEqual([
      { scheme: 'bearer', params: { error: 'insufficient_user_authentication', max_age: '300', acr_values: 'a b' } },
    ]);
  });

  test('token68 challenges and schemes without parameters', () => {
    expect(parseChallenges('Negotiate abc+/def==, Basic, Bearer realm=api')).toEqual([
      { scheme: 'negotiate', params: {}, token68: 'abc+/def==' },
      { scheme: 'basic', params: {} },
      { scheme: 'bearer', params: { realm: 'api' } },
    ]);
  });

  test('several field lines are one list', () => {
    expect(parseChallenges(['Basic realm="x"', 'Bearer error="invalid_token"'])).toEqual([
      { scheme: 'basic', params: { realm: 'x' } },
      { scheme: 'bearer', params: { error: 'invalid_token' } },
    ]);
  });

  test('a repeated parameter keeps its first value; __proto__ is just a name', () => {
    const [challenge] = parseChallenges('Bearer error="a", error="b", __proto__="c"');
    expect(challenge?.params.error).toBe('a');
    expect(Object.keys(challenge?.params ?? {})).toEqual(['error', '__proto__']);
  });

  test('an unterminated quoted string ends the parse with what was read', () => {
    expect(parseChallenges('Bearer realm="x", error="insufficient_user_authentication')).toEqual([{ scheme: 'bearer', params: { realm: 'x' } }]);
  });

  test('garbage yields nothing', () => {
    expect(parseChallenges('')).toEqual([]);
    expect(parseChallenges('"quoted"')).toEqual([]);
    expect(parseChallenges('=x')).toEqual([]);
  });
});

describe('the RFC 9470 step-up challenge', () => {
  test('acr_values and max_age of the Bearer challenge with insufficient_user_authentication', () => {
    expect(insufficientUserAuthentication('Bearer error="insufficient_user_authentication", acr_values="urn:loa:2 urn:loa:3", max_age=300')).toEqual({
      acrValues: 'urn:loa:2 urn:loa:3',
      maxAge: '300',
    });
  });
  test('found behind another scheme, whatever the case of the scheme', () => {
    expect(insufficientUserAuthentication('DPoP algs="ES256", bearer error=insufficient_user_authentication, max_age="60"')).toEqual({ maxAge: '60' });
  });
  test('a comma inside a quoted value of another challenge does not leak a fake parameter', () => {
    expect(insufficientUserAuthentication('Basic realm="a, error=insufficient_user_authentication"')).toBeUndefined();
    expect(insufficientUserAuthentication('Bearer realm="x, acr_values=evil", error="insufficient_user_authentication", acr_values="good"')).toEqual({ acrValues: 'good' });
  });
  test('other errors and other schemes are not step-up challenges', () => {
    expect(insufficientUserAuthentication('Bearer error="invalid_token"')).toBeUndefined();
    expect(insufficientUserAuthentication('Basic error="insufficient_user_authentication", acr_values="x"')).toBeUndefined();
    expect(insufficientUserAuthentication('Bearer')).toBeUndefined();
  });
  test('a challenge that names neither value says so (empty)', () => {
    expect(insufficientUserAuthentication('Bearer error="insufficient_user_authentication"')).toEqual({});
  });
});
