import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { JWK } from 'oidc-provider';
import { ConfigError, loadConfig } from '../../src/config/load.ts';
import { startGateway } from '../../src/gateway.ts';
import { OidcClient } from '../../src/oidc/client.ts';
import { Fapi2RefusedError } from '../../src/oidc/fapi2.ts';
import { runCheck } from '../../src/ops/check.ts';
import { createLogger } from '../../src/ops/logger.ts';
import { CHILD_TIMEOUT_MS, runCli, type Outcome } from '../support/cli-child.ts';
import { TEST_SESSION_SECRET } from '../support/gateway.ts';
import { startIdp, TEST_CLIENT_ID, TEST_CLIENT_SECRET, type IdpOptions, type TestIdp } from '../support/idp.ts';
import { testRedisUrl } from '../support/redis.ts';

/**
 * BFF_PROFILE=fapi2 against real providers: one that meets FAPI 2.0, and
 * providers that each miss one requirement. A full login under the profile
 * needs DPoP, which is not part of this suite.
 */

const REDIRECT_URI = 'http://127.0.0.1:1/auth/callback';

const clientKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const CLIENT_PEM = clientKey.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
const CLIENT_JWKS = { keys: [{ ...clientKey.publicKey.export({ format: 'jwk' }), kid: 'bff-fapi2', alg: 'ES256', use: 'sig' } as JWK] };

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bff-fapi2-'));
  writeFileSync(join(dir, 'routes.json'), JSON.stringify({ routes: [] }));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A FAPI 2.0 test IdP, changed by `extra`; closed by the caller. */
function fapi2Idp(extra: IdpOptions = {}): Promise<TestIdp> {
  return startIdp({ redirectUris: [REDIRECT_URI], fapi2: true, clientJwks: CLIENT_JWKS, ...extra });
}

/** A configuration that meets the profile (http on loopback: the local-development allowance). */
function fapi2Env(issuer: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    BFF_PUBLIC_URL: 'http://127.0.0.1:1',
    BFF_ISSUER_URL: issuer,
    BFF_ALLOW_INSECURE_ISSUER: 'true',
    BFF_CLIENT_ID: TEST_CLIENT_ID,
    BFF_CLIENT_AUTH_METHOD: 'private_key_jwt',
    BFF_CLIENT_PRIVATE_KEY: CLIENT_PEM,
    BFF_SESSION_SECRETS: TEST_SESSION_SECRET,
    BFF_ROUTES_FILE: join(dir, 'routes.json'),
    BFF_DPOP: 'true',
    BFF_PROFILE: 'fapi2',
    ...extra,
  };
}

async function check(env: Record<string, string>): Promise<{ code: number; output: string }> {
  const lines: string[] = [];
  const code = await runCheck({ env, cwd: dir, write: (line) => lines.push(line), timeoutMs: 3000 });
  return { code, output: lines.join('\n') };
}

function failLines(output: string): string[] {
  return output.split('\n').filter((line) => line.startsWith('  FAIL'));
}

describe('a provider that meets FAPI 2.0', () => {
  let idp: TestIdp;
  beforeAll(async () => {
    idp = await fapi2Idp();
  });
  afterAll(async () => {
    await idp?.close();
  });

  test('--check passes the configuration and the provider, naming what it cannot see', async () => {
    const { code, output } = await check(fapi2Env(idp.issuer));
    expect(failLines(output)).toEqual([]);
    expect(output).toMatch(/ok {4}BFF_PROFILE: the provider advertises what FAPI 2.0 requires \(PAR, PKCE S256, RFC 9207 iss, private_key_jwt, DPoP ES256, ID tokens [^)]*ES256[^)]*\)/);
    expect(output).toContain('authorization code lifetime (at most 60 s) and refresh token rotation');
    expect(code).toBe(0);
  });

  test('the gateway starts against it and becomes ready (the profile refuses nothing)', async () => {
    const gateway = await startGateway(loadConfig(fapi2Env(idp.issuer, { BFF_PORT: '0', BFF_ADMIN_PORT: '0' }), dir), { host: '127.0.0.1', logger: silentLogger() });
    try {
      expect((await fetch(`${gateway.adminUrl}/readyz`)).status).toBe(200);
    } finally {
      await gateway.close(1000);
    }
  });

  test('every login is pushed (PAR) with PKCE S256, and a callback without iss is refused before the code is exchanged', async () => {
    const oidc = new OidcClient(loadConfig(fapi2Env(idp.issuer), dir), silentLogger());
    try {
      await oidc.start();
      expect(oidc.ready).toBe(true);
      const pushed = idp.counts.par;
      const { url, checks } = await oidc.startLogin({});
      // The provider accepted the pushed request: it requires PKCE and knows S256 only.
      expect(idp.counts.par).toBe(pushed + 1);
      expect([...new URL(url).searchParams.keys()].sort()).toEqual(['client_id', 'request_uri']);
      const grants = idp.tokenEndpoint.requests('authorization_code');
      await expect(oidc.finishLogin(`code=abc&state=${checks.state}`, checks)).rejects.toMatchObject({ reason: 'fapi2_iss_missing' });
      expect(idp.tokenEndpoint.requests('authorization_code')).toBe(grants);
    } finally {
      oidc.close();
    }
  });

  test('a client secret, a missing DPoP and a non-loopback http issuer are refused by name, before the provider is asked', () => {
    const env = fapi2Env('http://idp.example.com', { BFF_CLIENT_AUTH_METHOD: 'client_secret_basic', BFF_CLIENT_SECRET: TEST_CLIENT_SECRET, BFF_DPOP: 'false' });
    let error: unknown;
    try {
      loadConfig(env, dir);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    for (const name of ['BFF_CLIENT_AUTH_METHOD', 'BFF_CLIENT_SECRET', 'BFF_DPOP', 'BFF_ISSUER_URL']) expect(problems).toMatch(new RegExp(`^${name}: .*fapi2`, 'm'));
    expect(problems).not.toContain(TEST_CLIENT_SECRET);
  });
});

/** Providers that each miss one requirement: the FAIL line that names it, and how many FAIL lines in all. */
const SHORTCOMINGS: Array<[string, IdpOptions, RegExp, number]> = [
  [
    'no PAR',
    { par: false },
    /FAIL {2}BFF_ISSUER_URL: the provider's pushed_authorization_request_endpoint is not advertised: no pushed authorization requests \(PAR, RFC 9126\), which BFF_PROFILE=fapi2 requires/,
    1,
  ],
  ['no DPoP', { discovery: { dpop_signing_alg_values_supported: undefined } }, /FAIL {2}BFF_ISSUER_URL: the provider's dpop_signing_alg_values_supported is not advertised: no DPoP \(RFC 9449\)/, 1],
  [
    'DPoP without the configured algorithm',
    { discovery: { dpop_signing_alg_values_supported: ['EdDSA'] } },
    /FAIL {2}BFF_DPOP_ALG: the provider's dpop_signing_alg_values_supported does not include ES256/,
    1,
  ],
  [
    'no RFC 9207 iss',
    { discovery: { authorization_response_iss_parameter_supported: undefined } },
    /FAIL {2}BFF_ISSUER_URL: the provider's authorization_response_iss_parameter_supported is not true \(iss in the authorization response, RFC 9207\)/,
    1,
  ],
  [
    'ID tokens signed RS256 only',
    { discovery: { id_token_signing_alg_values_supported: ['RS256'] } },
    /FAIL {2}BFF_ISSUER_URL: the provider's id_token_signing_alg_values_supported includes none of PS256, ES256, EdDSA/,
    1,
  ],
  ['no PKCE S256', { discovery: { code_challenge_methods_supported: ['plain'] } }, /FAIL {2}BFF_ISSUER_URL: the provider's code_challenge_methods_supported does not include S256 \(PKCE\)/, 1],
  // The gateway's own check of the authentication method fails as well.
  [
    'no private_key_jwt',
    { discovery: { token_endpoint_auth_methods_supported: ['client_secret_basic'] } },
    /FAIL {2}BFF_ISSUER_URL: the provider's token_endpoint_auth_methods_supported does not include private_key_jwt/,
    2,
  ],
  [
    'client assertions without the algorithm of the key',
    { discovery: { token_endpoint_auth_signing_alg_values_supported: ['RS256'] } },
    /FAIL {2}BFF_CLIENT_PRIVATE_KEY: the provider's token_endpoint_auth_signing_alg_values_supported does not include ES256 \(the algorithm of the client key\)/,
    1,
  ],
];

describe('--check against a provider that misses a requirement', () => {
  test.each(SHORTCOMINGS)('%s: exit 1, naming it', async (_name, options, line, failures) => {
    const idp = await fapi2Idp(options);
    try {
      const { code, output } = await check(fapi2Env(idp.issuer));
      expect(output).toMatch(line);
      expect(failLines(output)).toHaveLength(failures);
      expect(code).toBe(1);
      expect(output).not.toContain('PRIVATE KEY-----');
    } finally {
      await idp.close();
    }
  });

  test('all at once, with a configuration that misses the profile too: every one named in one report', async () => {
    const discovery = Object.assign({}, ...SHORTCOMINGS.map(([, options]) => options.discovery ?? {})) as Record<string, unknown>;
    const idp = await fapi2Idp({ par: false, discovery: { ...discovery, dpop_signing_alg_values_supported: undefined } });
    try {
      const { code, output } = await check(fapi2Env(idp.issuer, { BFF_CLIENT_SECRET: TEST_CLIENT_SECRET, BFF_DPOP: 'false' }));
      for (const [name, , line] of SHORTCOMINGS) if (name !== 'DPoP without the configured algorithm') expect(output).toMatch(line);
      expect(output).toMatch(/FAIL {2}BFF_CLIENT_SECRET: must not be set under BFF_PROFILE=fapi2/);
      expect(output).toMatch(/FAIL {2}BFF_DPOP: BFF_PROFILE=fapi2 requires sender-constrained tokens/);
      expect(code).toBe(1);
      expect(output).not.toContain(TEST_CLIENT_SECRET);
    } finally {
      await idp.close();
    }
  });
});

describe('start-up against a provider without PAR', () => {
  let idp: TestIdp;
  beforeAll(async () => {
    idp = await fapi2Idp({ par: false, discovery: { authorization_response_iss_parameter_supported: undefined } });
  });
  afterAll(async () => {
    await idp?.close();
  });
  const gatewayEnv = (): Record<string, string> => fapi2Env(idp.issuer, { BFF_PORT: '0', BFF_ADMIN_PORT: '0' });

  test('startGateway refuses, naming every unmet requirement in the error and in fatal log lines', async () => {
    const logs: string[] = [];
    const started = startGateway(loadConfig(gatewayEnv(), dir), { host: '127.0.0.1', logger: silentLogger(logs) });
    await expect(started).rejects.toBeInstanceOf(Fapi2RefusedError);
    const refusal = (await started.catch((err: unknown) => err)) as Fapi2RefusedError;
    expect(refusal.problems).toHaveLength(2);
    expect(refusal.message).toContain('pushed_authorization_request_endpoint');
    expect(refusal.message).toContain('authorization_response_iss_parameter_supported');
    const fatal = logs.map((line) => JSON.parse(line) as { level: number; requirement?: string }).filter((line) => line.level === 60);
    expect(fatal.map((line) => line.requirement)).toEqual(refusal.problems);
  });

  test('a provider that was down at start-up and fails the profile once it answers: onFatal, and never ready', async () => {
    await idp.stop();
    let fatal: (err: Error) => void = () => undefined;
    const refused = new Promise<Error>((resolveFatal) => (fatal = resolveFatal));
    const gateway = await startGateway(loadConfig(gatewayEnv(), dir), { host: '127.0.0.1', logger: silentLogger(), onFatal: (err) => fatal(err) });
    try {
      expect((await fetch(`${gateway.adminUrl}/readyz`)).status).toBe(503);
      await idp.start();
      const err = await refused;
      expect(err).toBeInstanceOf(Fapi2RefusedError);
      expect(err.message).toContain('pushed_authorization_request_endpoint');
      expect((await fetch(`${gateway.adminUrl}/readyz`)).status).toBe(503);
    } finally {
      await idp.start();
      await gateway.close(1000);
    }
  }, 30_000);

  test(
    'node src/index.ts exits 1, naming each requirement',
    async () => {
      const { code, stderr, stdout } = await runGateway(gatewayEnv());
      expect(code).toBe(1);
      expect(stderr).toContain('does not meet the FAPI 2.0 profile');
      expect(stderr).toContain('pushed_authorization_request_endpoint');
      expect(stderr).toContain('authorization_response_iss_parameter_supported');
      expect(stdout).not.toContain('bff-gateway listening');
    },
    CHILD_TIMEOUT_MS + 5000,
  );

  test(
    'node src/index.ts started while the provider is down exits 1 once it answers',
    async () => {
      await idp.stop();
      try {
        const outcome = runGateway(gatewayEnv(), (stdout) => {
          if (stdout.includes('bff-gateway listening')) void idp.start();
        });
        const { code, stdout } = await outcome;
        expect(stdout).toContain('bff-gateway listening');
        expect(stdout).toContain('pushed_authorization_request_endpoint');
        expect(code).toBe(1);
      } finally {
        await idp.start();
      }
    },
    CHILD_TIMEOUT_MS + 5000,
  );

  test(
    'BFF_WORKERS=2: the workers refuse at start-up, and the primary exits 1 with them instead of replacing them',
    async () => {
      const { code, stderr, stdout } = await runGateway({ ...gatewayEnv(), BFF_WORKERS: '2', BFF_REDIS_URL: testRedisUrl() });
      expect(code).toBe(1);
      expect(stderr).toContain('does not meet the FAPI 2.0 profile');
      expect(stdout).toContain('a worker failed to start (its error is above); stopping with its exit code');
      expect(stdout).not.toContain('starting a replacement');
      expect(stdout).not.toContain('workers started');
    },
    CHILD_TIMEOUT_MS + 5000,
  );

  test(
    'BFF_WORKERS=2 started while the provider is down: once it answers and fails the profile, every worker stops and the primary exits 1',
    async () => {
      await idp.stop();
      try {
        const { code, stdout } = await runGateway({ ...gatewayEnv(), BFF_WORKERS: '2', BFF_REDIS_URL: testRedisUrl() }, (out) => {
          if (out.includes('"msg":"workers started"')) void idp.start();
        });
        expect(stdout).toContain('pushed_authorization_request_endpoint');
        expect(stdout).toContain('a worker stopped on a fatal error; stopping every worker');
        expect(stdout).not.toContain('starting a replacement');
        expect(code).toBe(1);
      } finally {
        await idp.start();
      }
    },
    CHILD_TIMEOUT_MS + 5000,
  );

  test(
    'node src/index.ts with a client secret under the profile exits 2 before asking the provider, naming the variables',
    async () => {
      const { code, stderr } = await runGateway({ ...gatewayEnv(), BFF_CLIENT_AUTH_METHOD: 'client_secret_basic', BFF_CLIENT_SECRET: TEST_CLIENT_SECRET });
      expect(code).toBe(2);
      expect(stderr).toContain('BFF_CLIENT_AUTH_METHOD: BFF_PROFILE=fapi2 requires private_key_jwt');
      expect(stderr).toContain('BFF_CLIENT_SECRET: must not be set under BFF_PROFILE=fapi2');
      expect(stderr).not.toContain(TEST_CLIENT_SECRET);
    },
    CHILD_TIMEOUT_MS + 5000,
  );
});

function silentLogger(lines: string[] = []): ReturnType<typeof createLogger> {
  return createLogger(
    'trace',
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    }),
  );
}

/** `node src/index.ts` with exactly this environment; `onStdout` sees the output so far after each chunk. */
const runGateway = (env: Record<string, string>, onStdout?: (stdout: string) => void): Promise<Outcome> => runCli([], { cwd: dir, env, ...(onStdout ? { onStdout } : {}) });
