import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeProtectedHeader, SignJWT } from 'jose';
import { clientKeyAlgorithm } from '../../src/config/client-key.ts';
import { FAPI2_DPOP_ALGS, fapi2ConfigProblems, type Fapi2ConfigInput } from '../../src/config/fapi2.ts';
import { ConfigError, loadConfig } from '../../src/config/load.ts';
import { DPOP_ALGS } from '../../src/config/types.ts';
import { clientAuthentication } from '../../src/oidc/client-auth.ts';
import { IdpInvalidResponseError } from '../../src/oidc/errors.ts';
import { fapi2MetadataProblems, requireFapi2IdTokenAlg, requireIssParameter } from '../../src/oidc/fapi2.ts';

const CLIENT_SECRET = 'client-secret-Fq7pWz3Yt8';
const pem = (key: KeyObject): string => key.export({ format: 'pem', type: 'pkcs8' }).toString();
const KEYS = {
  rsa2048: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
  rsa1024: generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey,
  p256: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
  p384: generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey,
  ed25519: generateKeyPairSync('ed25519').privateKey,
};

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bff-fapi2-unit-'));
  writeFileSync(join(dir, 'routes.json'), JSON.stringify({ routes: [] }));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A configuration that meets the profile. */
function fapi2Env(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    BFF_PUBLIC_URL: 'https://app.example.com',
    BFF_ISSUER_URL: 'https://idp.example.com',
    BFF_CLIENT_ID: 'bff',
    BFF_CLIENT_AUTH_METHOD: 'private_key_jwt',
    BFF_CLIENT_PRIVATE_KEY: pem(KEYS.p256),
    BFF_SESSION_SECRETS: 'session-secret-0123456789-abcdefghijklmnop',
    BFF_ROUTES_FILE: join(dir, 'routes.json'),
    BFF_DPOP: 'true',
    BFF_PROFILE: 'fapi2',
    ...overrides,
  };
}

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env, dir);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
}

/** One way each to miss the profile's configuration half, and the variables the problems must name. */
const CONFIG_MISSES: Array<[string, Record<string, string>, string[]]> = [
  ['a client secret method', { BFF_CLIENT_AUTH_METHOD: 'client_secret_basic', BFF_CLIENT_SECRET: CLIENT_SECRET, BFF_CLIENT_PRIVATE_KEY: '' }, ['BFF_CLIENT_AUTH_METHOD', 'BFF_CLIENT_SECRET']],
  ['a leftover client secret beside the key', { BFF_CLIENT_SECRET: CLIENT_SECRET }, ['BFF_CLIENT_SECRET']],
  ['no DPoP', { BFF_DPOP: 'false' }, ['BFF_DPOP']],
  ['an RSA key of 1024 bits', { BFF_CLIENT_PRIVATE_KEY: pem(KEYS.rsa1024) }, ['BFF_CLIENT_PRIVATE_KEY']],
  ['an EC key on P-384', { BFF_CLIENT_PRIVATE_KEY: pem(KEYS.p384) }, ['BFF_CLIENT_PRIVATE_KEY']],
  ['an http issuer off loopback, even with the dev switch', { BFF_ISSUER_URL: 'http://idp.example.com', BFF_ALLOW_INSECURE_ISSUER: 'true' }, ['BFF_ISSUER_URL']],
  ['an http public URL off loopback', { BFF_PUBLIC_URL: 'http://app.example.com', BFF_COOKIE_NAME: 'bff' }, ['BFF_PUBLIC_URL']],
];

describe('BFF_PROFILE=fapi2, the configuration half', () => {
  test('a configuration that meets it loads', () => {
    expect(problemsOf(fapi2Env())).toEqual([]);
    for (const key of [KEYS.rsa2048, KEYS.ed25519]) expect(problemsOf(fapi2Env({ BFF_CLIENT_PRIVATE_KEY: pem(key) }))).toEqual([]);
    // Local development: http on a loopback host, with the dev switch.
    expect(problemsOf(fapi2Env({ BFF_ISSUER_URL: 'http://localhost:8080', BFF_ALLOW_INSECURE_ISSUER: 'true', BFF_PUBLIC_URL: 'http://127.0.0.1:3000', BFF_COOKIE_NAME: 'bff' }))).toEqual([]);
  });

  test.each(CONFIG_MISSES)('%s is refused by name, and only under the profile', (_name, change, names) => {
    const problems = problemsOf(fapi2Env(change));
    expect(problems.map((p) => p.split(':')[0])).toEqual(names);
    for (const problem of problems) expect(problem).toContain('fapi2');
    expect(problemsOf(fapi2Env({ ...change, BFF_PROFILE: 'none' }))).toEqual([]);
  });

  test('all at once: every one named in one ConfigError, no secret or key in it', () => {
    const problems = problemsOf(
      fapi2Env({
        BFF_CLIENT_AUTH_METHOD: 'client_secret_post',
        BFF_CLIENT_SECRET: CLIENT_SECRET,
        BFF_DPOP: 'false',
        BFF_ISSUER_URL: 'http://idp.example.com',
        BFF_ALLOW_INSECURE_ISSUER: 'true',
        BFF_PUBLIC_URL: 'http://app.example.com',
        BFF_COOKIE_NAME: 'bff',
      }),
    );
    expect(problems.map((p) => p.split(':')[0])).toEqual(['BFF_CLIENT_AUTH_METHOD', 'BFF_CLIENT_SECRET', 'BFF_DPOP', 'BFF_ISSUER_URL', 'BFF_PUBLIC_URL']);
    expect(problems.join('\n')).not.toContain(CLIENT_SECRET);
    expect(problems.join('\n')).not.toContain('PRIVATE KEY');
  });

  test('BFF_DPOP_ALG must be one FAPI 2.0 allows; every algorithm the gateway offers is', () => {
    const input: Fapi2ConfigInput = {
      issuerUrl: new URL('https://idp.example.com'),
      publicUrl: new URL('https://app.example.com'),
      allowInsecureIssuer: false,
      clientAuthMethod: 'private_key_jwt',
      clientSecretSet: false,
      clientPrivateKey: pem(KEYS.p256),
      dpop: { enabled: true, alg: 'RS256' },
    };
    expect(fapi2ConfigProblems(input)).toEqual(['BFF_DPOP_ALG: BFF_PROFILE=fapi2 allows only PS256, ES256, EdDSA']);
    for (const alg of DPOP_ALGS) expect(fapi2ConfigProblems({ ...input, dpop: { enabled: true, alg } })).toEqual([]);
    expect(FAPI2_DPOP_ALGS).toEqual(DPOP_ALGS);
  });
});

describe('client assertion algorithms', () => {
  test('an RSA key signs RS256 without the profile, PS256 under it; P-256 ES256; Ed25519 EdDSA', () => {
    expect(clientKeyAlgorithm(pem(KEYS.rsa2048), 'none')).toEqual({ alg: 'RS256' });
    expect(clientKeyAlgorithm(pem(KEYS.rsa2048), 'fapi2')).toEqual({ alg: 'PS256' });
    expect(clientKeyAlgorithm(pem(KEYS.p256), 'fapi2')).toEqual({ alg: 'ES256' });
    expect(clientKeyAlgorithm(pem(KEYS.ed25519), 'fapi2')).toEqual({ alg: 'EdDSA' });
    expect(clientKeyAlgorithm(pem(KEYS.p384), 'none')).toEqual({ alg: 'ES384' });
  });

  test('under the profile the gateway signs its client assertions PS256 with an RSA key', async () => {
    const config = loadConfig(fapi2Env({ BFF_CLIENT_PRIVATE_KEY: pem(KEYS.rsa2048) }), dir);
    const authenticate = await clientAuthentication(config);
    const body = new URLSearchParams();
    type Args = Parameters<typeof authenticate>;
    // openid-client types it as returning void; private_key_jwt signs asynchronously.
    const signing: unknown = authenticate({ issuer: 'https://idp.example.com' } as Args[0], { client_id: 'bff' } as Args[1], body, new Headers());
    await (signing as Promise<void>);
    const assertion = body.get('client_assertion');
    expect(assertion).not.toBeNull();
    expect(decodeProtectedHeader(assertion as string).alg).toBe('PS256');
  });
});

/** What a provider that meets FAPI 2.0 advertises. */
const GOOD_METADATA = {
  issuer: 'https://idp.example.com',
  pushed_authorization_request_endpoint: 'https://idp.example.com/par',
  code_challenge_methods_supported: ['S256'],
  authorization_response_iss_parameter_supported: true,
  token_endpoint_auth_methods_supported: ['private_key_jwt'],
  token_endpoint_auth_signing_alg_values_supported: ['PS256', 'ES256'],
  dpop_signing_alg_values_supported: ['ES256', 'EdDSA'],
  id_token_signing_alg_values_supported: ['RS256', 'PS256'],
};
const EXPECTED = { dpopAlg: 'ES256', clientAssertionAlg: 'ES256' };

const METADATA_MISSES: Array<[string, Record<string, unknown>, RegExp]> = [
  ['no PAR endpoint', { pushed_authorization_request_endpoint: undefined }, /^BFF_ISSUER_URL: .*pushed_authorization_request_endpoint is not advertised/],
  ['no S256', { code_challenge_methods_supported: ['plain'] }, /^BFF_ISSUER_URL: .*code_challenge_methods_supported does not include S256/],
  ['no PKCE methods advertised', { code_challenge_methods_supported: undefined }, /^BFF_ISSUER_URL: .*code_challenge_methods_supported does not include S256/],
  ['iss not supported', { authorization_response_iss_parameter_supported: false }, /^BFF_ISSUER_URL: .*authorization_response_iss_parameter_supported is not true/],
  ['no private_key_jwt', { token_endpoint_auth_methods_supported: ['client_secret_basic'] }, /^BFF_ISSUER_URL: .*token_endpoint_auth_methods_supported does not include private_key_jwt/],
  ['auth methods not advertised (client_secret_basic only)', { token_endpoint_auth_methods_supported: undefined }, /^BFF_ISSUER_URL: .*token_endpoint_auth_methods_supported/],
  ['assertions not in the key algorithm', { token_endpoint_auth_signing_alg_values_supported: ['RS256'] }, /^BFF_CLIENT_PRIVATE_KEY: .*does not include ES256/],
  ['no DPoP', { dpop_signing_alg_values_supported: undefined }, /^BFF_ISSUER_URL: .*dpop_signing_alg_values_supported is not advertised/],
  ['DPoP without the configured algorithm', { dpop_signing_alg_values_supported: ['EdDSA'] }, /^BFF_DPOP_ALG: .*does not include ES256/],
  ['ID tokens RS256 only', { id_token_signing_alg_values_supported: ['RS256'] }, /^BFF_ISSUER_URL: .*id_token_signing_alg_values_supported includes none of PS256, ES256, EdDSA/],
];

describe('BFF_PROFILE=fapi2, the provider half', () => {
  test('a provider that advertises everything passes', () => {
    expect(fapi2MetadataProblems(GOOD_METADATA, EXPECTED)).toEqual([]);
  });

  test.each(METADATA_MISSES)('%s is named', (_name, change, line) => {
    const problems = fapi2MetadataProblems({ ...GOOD_METADATA, ...change }, EXPECTED);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(line);
    expect(problems[0]).toContain('BFF_PROFILE=fapi2 requires');
  });

  test('all at once: one problem per requirement (PAR, S256, iss, private_key_jwt, assertion algorithm, DPoP algorithm, ID token algorithm)', () => {
    const everything = Object.assign({ issuer: 'https://idp.example.com' }, ...METADATA_MISSES.filter(([name]) => !name.includes('not advertised') && name !== 'no DPoP').map(([, change]) => change));
    const problems = fapi2MetadataProblems(everything, EXPECTED);
    expect(problems).toHaveLength(7);
  });
});

describe('the login under the profile', () => {
  test('an authorization response without iss is refused', () => {
    expect(() => requireIssParameter('code=abc&state=xyz')).toThrow(IdpInvalidResponseError);
    expect(() => requireIssParameter('code=abc&state=xyz&iss=https%3A%2F%2Fidp.example.com')).not.toThrow();
  });

  test.each([
    ['RS256', 'refused', KEYS.rsa2048],
    ['PS256', 'accepted', KEYS.rsa2048],
    ['ES256', 'accepted', KEYS.p256],
    ['EdDSA', 'accepted', KEYS.ed25519],
  ] as const)('an ID token signed %s is %s', async (alg, verdict, key) => {
    const accepted = verdict === 'accepted';
    const idToken = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg }).sign(key);
    if (accepted) expect(() => requireFapi2IdTokenAlg(idToken)).not.toThrow();
    else expect(() => requireFapi2IdTokenAlg(idToken)).toThrow(expect.objectContaining({ reason: 'fapi2_id_token_alg' }));
  });
});
