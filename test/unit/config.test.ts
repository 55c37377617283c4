import { afterAll, beforeEach, describe, expect, test } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig } from '../../src/config/load.ts';
import type { Env } from '../../src/config/env-file.ts';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

// Distinct, recognisable values so that a leak into a message is easy to spot.
const CLIENT_SECRET = 'client-secret-Zq8vLw2Xk9';
const SECRET_A = 'session-secret-A-0123456789abcdefghijklmnop';
const SECRET_B = 'session-secret-B-qrstuvwxyz9876543210ABCDEF';

const VALID_ROUTES = {
  routes: [
    { prefix: '/api/orders', target: 'http://orders:8080', rewrite: '/v1/orders', token: 'user', methods: ['get', 'POST'] },
    { prefix: '/api/status', target: 'https://status.internal', rewrite: '/', token: 'none' },
  ],
};

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A fresh cwd holding a valid config/routes.json and nothing else (no .env). */
function makeCwd(): string {
  const dir = mkdtempSync(join(tmpdir(), 'bff-config-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'config'));
  writeFileSync(join(dir, 'config', 'routes.json'), JSON.stringify(VALID_ROUTES));
  return dir;
}

function baseEnv(overrides: Env = {}): Env {
  return {
    BFF_PUBLIC_URL: 'https://app.example.com',
    BFF_ISSUER_URL: 'https://idp.example.com/realms/main',
    BFF_CLIENT_ID: 'spa-gateway',
    BFF_CLIENT_SECRET: CLIENT_SECRET,
    BFF_SESSION_SECRETS: SECRET_A,
    ...overrides,
  };
}

function without(env: Env, ...names: string[]): Env {
  const copy = { ...env };
  for (const name of names) delete copy[name];
  return copy;
}

/** Runs loadConfig expecting a ConfigError and returns it, so callers can inspect problems and message. */
function configError(env: Env, cwd: string): ConfigError {
  let caught: unknown;
  try {
    loadConfig(env, cwd);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  return caught as ConfigError;
}

function problemsOf(env: Env, cwd: string): readonly string[] {
  return configError(env, cwd).problems;
}

function problemsNaming(problems: readonly string[], name: string): string[] {
  return problems.filter((p) => p.startsWith(`${name}:`));
}

let cwd: string;
beforeEach(() => {
  cwd = makeCwd();
});

describe('defaults', () => {
  test('a minimal valid environment gets the documented defaults', () => {
    const config = loadConfig(baseEnv(), cwd);

    expect(config.port).toBe(3000);
    expect(config.adminPort).toBe(9090);
    expect(config.scopes).toBe('openid profile email offline_access');
    expect(config.cookieName).toBe('__Host-bff');
    expect(config.txCookieName).toBe('__Host-bff-tx');
    expect(config.secure).toBe(true);
    expect(config.sameSite).toBe('strict');
    expect(config.sessionIdleTimeoutSec).toBe(1800);
    expect(config.sessionAbsoluteTimeoutSec).toBe(43200);
    expect(config.csrfHeader).toBe('x-csrf');
    expect(config.refreshSkewSec).toBe(30);
    expect(config.postLogoutRedirectUrl).toBe('https://app.example.com/');
    expect(config.redirectUri).toBe('https://app.example.com/auth/callback');
    expect(config.publicOrigin).toBe('https://app.example.com');
    expect(config.clientAuthMethod).toBe('client_secret_basic');
    expect(config.clientSecret).toBe(CLIENT_SECRET);
    expect(config.sessionSecrets).toEqual([SECRET_A]);
    expect(config.allowInsecureIssuer).toBe(false);
    expect(config.redisUrl).toBeUndefined();
    expect(config.trustProxy).toBe(false);
    expect(config.logLevel).toBe('info');
    expect(config.routesFile).toBe(join(cwd, 'config', 'routes.json'));
    expect(config.dpop).toEqual({ enabled: false, alg: 'ES256' });
    expect(config.profile).toBe('none');
  });

  test('an http public URL gets the plain cookie name and no Secure flag', () => {
    const config = loadConfig(baseEnv({ BFF_PUBLIC_URL: 'http://127.0.0.1:3000' }), cwd);
    expect(config.cookieName).toBe('bff');
    expect(config.txCookieName).toBe('bff-tx');
    expect(config.secure).toBe(false);
    expect(config.postLogoutRedirectUrl).toBe('http://127.0.0.1:3000/');
    expect(config.redirectUri).toBe('http://127.0.0.1:3000/auth/callback');
  });

  test('the default routes file under cwd is parsed and normalised', () => {
    const config = loadConfig(baseEnv(), cwd);
    expect(config.routes).toHaveLength(2);
    const [orders, status] = config.routes;
    expect(orders).toMatchObject({ prefix: '/api/orders', rewrite: '/v1/orders', token: 'user', methods: ['GET', 'POST'], websocket: false, timeoutMs: 30000 });
    expect(orders?.target.href).toBe('http://orders:8080/');
    expect(status).toMatchObject({ prefix: '/api/status', rewrite: '/', token: 'none' });
    expect(status?.methods).toBeUndefined();
  });
});

describe('required variables', () => {
  test.each(['BFF_PUBLIC_URL', 'BFF_ISSUER_URL', 'BFF_CLIENT_ID', 'BFF_CLIENT_SECRET', 'BFF_SESSION_SECRETS'])('%s missing is named', (name) => {
    const problems = problemsOf(without(baseEnv(), name), cwd);
    expect(problems).toHaveLength(1);
    expect(problemsNaming(problems, name)).toHaveLength(1);
  });

  test('a blank value counts as missing', () => {
    const problems = problemsOf(baseEnv({ BFF_CLIENT_ID: '   ' }), cwd);
    expect(problemsNaming(problems, 'BFF_CLIENT_ID')).toHaveLength(1);
  });

  test('several problems are reported at once in one ConfigError', () => {
    const error = configError(without(baseEnv({ BFF_SAMESITE: 'none', BFF_SESSION_IDLE_TIMEOUT: 'abc' }), 'BFF_PUBLIC_URL', 'BFF_CLIENT_ID'), cwd);
    const names = error.problems.map((p) => p.slice(0, p.indexOf(':')));
    expect(names).toEqual(expect.arrayContaining(['BFF_PUBLIC_URL', 'BFF_CLIENT_ID', 'BFF_SAMESITE', 'BFF_SESSION_IDLE_TIMEOUT']));
    expect(error.problems).toHaveLength(4);
    for (const problem of error.problems) expect(error.message).toContain(problem);
  });
});

describe('secrets', () => {
  test('a session secret shorter than 32 bytes is named and never echoed', () => {
    const short = 'tooShortSecret-xyz';
    const error = configError(baseEnv({ BFF_SESSION_SECRETS: short }), cwd);
    expect(problemsNaming(error.problems, 'BFF_SESSION_SECRETS')).toHaveLength(1);
    expect(error.message).not.toContain(short);
    expect(JSON.stringify(error.problems)).not.toContain(short);
  });

  test('length is counted in UTF-8 bytes: 32 bytes pass, 31 do not', () => {
    // 'é' is two bytes: 16 of them are 32 bytes in 16 characters.
    expect(loadConfig(baseEnv({ BFF_SESSION_SECRETS: 'é'.repeat(16) }), cwd).sessionSecrets).toEqual(['é'.repeat(16)]);
    const problems = problemsOf(baseEnv({ BFF_SESSION_SECRETS: 'é'.repeat(15) + 'x' }), cwd);
    expect(problemsNaming(problems, 'BFF_SESSION_SECRETS')).toHaveLength(1);
  });

  test('the rotation list keeps its order: first active, the rest still accepted', () => {
    expect(loadConfig(baseEnv({ BFF_SESSION_SECRETS: `${SECRET_B},${SECRET_A}` }), cwd).sessionSecrets).toEqual([SECRET_B, SECRET_A]);
    expect(loadConfig(baseEnv({ BFF_SESSION_SECRETS: ` ${SECRET_A} , ${SECRET_B} ` }), cwd).sessionSecrets).toEqual([SECRET_A, SECRET_B]);
  });

  test('a short entry anywhere in the rotation list is refused without echoing any entry', () => {
    const short = 'old-short-secret';
    const error = configError(baseEnv({ BFF_SESSION_SECRETS: `${SECRET_A},${short}` }), cwd);
    expect(problemsNaming(error.problems, 'BFF_SESSION_SECRETS')).toHaveLength(1);
    expect(error.message).not.toContain(short);
    expect(error.message).not.toContain(SECRET_A);
  });

  test('no problem message ever contains the client secret', () => {
    const error = configError(baseEnv({ BFF_SESSION_SECRETS: 'short', BFF_ISSUER_URL: 'http://idp', BFF_PORT: 'x' }), cwd);
    expect(error.problems.length).toBeGreaterThanOrEqual(3);
    expect(error.message).not.toContain(CLIENT_SECRET);
  });
});

describe('DPoP and the security profile', () => {
  test('BFF_DPOP, BFF_DPOP_ALG and BFF_PROFILE are read as written', () => {
    // The profile's own requirements (test/unit/fapi2.test.ts): private_key_jwt, no client secret.
    const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const env = without(baseEnv({ BFF_DPOP: 'TRUE', BFF_DPOP_ALG: 'EdDSA', BFF_PROFILE: 'fapi2', BFF_CLIENT_AUTH_METHOD: 'private_key_jwt', BFF_CLIENT_PRIVATE_KEY: pem }), 'BFF_CLIENT_SECRET');
    const config = loadConfig(env, cwd);
    expect(config.dpop).toEqual({ enabled: true, alg: 'EdDSA' });
    expect(config.profile).toBe('fapi2');
  });

  test.each([
    ['BFF_DPOP', 'maybe'],
    ['BFF_DPOP_ALG', 'RS256'],
    ['BFF_DPOP_ALG', 'es256'],
    ['BFF_PROFILE', 'fapi1'],
  ])('%s=%s is refused by name', (name, value) => {
    expect(problemsNaming(problemsOf(baseEnv({ [name]: value }), cwd), name)).toHaveLength(1);
  });
});

describe('issuer', () => {
  test('an http issuer without BFF_ALLOW_INSECURE_ISSUER=true is an error', () => {
    const problems = problemsOf(baseEnv({ BFF_ISSUER_URL: 'http://127.0.0.1:4000' }), cwd);
    expect(problems).toHaveLength(1);
    expect(problemsNaming(problems, 'BFF_ISSUER_URL')[0]).toContain('BFF_ALLOW_INSECURE_ISSUER');
  });

  test('an http issuer is accepted with BFF_ALLOW_INSECURE_ISSUER=true', () => {
    const config = loadConfig(baseEnv({ BFF_ISSUER_URL: 'http://127.0.0.1:4000', BFF_ALLOW_INSECURE_ISSUER: 'true' }), cwd);
    expect(config.issuerUrl.href).toBe('http://127.0.0.1:4000/');
    expect(config.allowInsecureIssuer).toBe(true);
  });

  test('BFF_ALLOW_INSECURE_ISSUER=false keeps refusing', () => {
    const problems = problemsOf(baseEnv({ BFF_ISSUER_URL: 'http://127.0.0.1:4000', BFF_ALLOW_INSECURE_ISSUER: 'false' }), cwd);
    expect(problemsNaming(problems, 'BFF_ISSUER_URL')).toHaveLength(1);
  });

  test('a non-http issuer is an error', () => {
    expect(problemsNaming(problemsOf(baseEnv({ BFF_ISSUER_URL: 'ftp://idp.example.com' }), cwd), 'BFF_ISSUER_URL')).toHaveLength(1);
    expect(problemsNaming(problemsOf(baseEnv({ BFF_ISSUER_URL: 'idp.example.com' }), cwd), 'BFF_ISSUER_URL')).toHaveLength(1);
  });
});

describe('client authentication', () => {
  const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

  test('private_key_jwt needs no client secret but a private key', () => {
    const env = without(baseEnv({ BFF_CLIENT_AUTH_METHOD: 'private_key_jwt' }), 'BFF_CLIENT_SECRET');
    const problems = problemsOf(env, cwd);
    expect(problems).toHaveLength(1);
    expect(problemsNaming(problems, 'BFF_CLIENT_PRIVATE_KEY')).toHaveLength(1);

    const config = loadConfig({ ...env, BFF_CLIENT_PRIVATE_KEY: pem }, cwd);
    expect(config.clientAuthMethod).toBe('private_key_jwt');
    expect(config.clientSecret).toBeUndefined();
    expect(config.clientPrivateKey).toBe(pem.trim());
  });

  test('a private key that is not PKCS#8 PEM is refused without echoing it', () => {
    const notPem = 'definitely-not-a-pem-key-material';
    const error = configError(without(baseEnv({ BFF_CLIENT_AUTH_METHOD: 'private_key_jwt', BFF_CLIENT_PRIVATE_KEY: notPem }), 'BFF_CLIENT_SECRET'), cwd);
    expect(problemsNaming(error.problems, 'BFF_CLIENT_PRIVATE_KEY')).toHaveLength(1);
    expect(error.message).not.toContain(notPem);
  });

  test('client_secret_post still needs the secret; an unknown method is named', () => {
    const problems = problemsOf(without(baseEnv({ BFF_CLIENT_AUTH_METHOD: 'client_secret_post' }), 'BFF_CLIENT_SECRET'), cwd);
    expect(problemsNaming(problems, 'BFF_CLIENT_SECRET')).toHaveLength(1);
    expect(problemsNaming(problemsOf(baseEnv({ BFF_CLIENT_AUTH_METHOD: 'tls_client_auth' }), cwd), 'BFF_CLIENT_AUTH_METHOD')).toHaveLength(1);
  });
});

describe('NAME_FILE secrets', () => {
  function secretFile(name: string, content: string): string {
    const path = join(cwd, name);
    writeFileSync(path, content);
    return path;
  }

  test('BFF_CLIENT_SECRET_FILE is read and its trailing newline trimmed', () => {
    const env = without(baseEnv({ BFF_CLIENT_SECRET_FILE: secretFile('client-secret', 'from-file-secret\n') }), 'BFF_CLIENT_SECRET');
    expect(loadConfig(env, cwd).clientSecret).toBe('from-file-secret');
  });

  test('BFF_SESSION_SECRETS_FILE is read and its trailing newline trimmed', () => {
    const env = without(baseEnv({ BFF_SESSION_SECRETS_FILE: secretFile('session-secrets', `${SECRET_B},${SECRET_A}\r\n`) }), 'BFF_SESSION_SECRETS');
    expect(loadConfig(env, cwd).sessionSecrets).toEqual([SECRET_B, SECRET_A]);
  });

  test('BFF_REDIS_URL_FILE is read and its trailing newline trimmed', () => {
    const url = 'redis://:p4ssw0rd@redis.internal:6379/2';
    expect(loadConfig(baseEnv({ BFF_REDIS_URL_FILE: secretFile('redis-url', `${url}\n`) }), cwd).redisUrl).toBe(url);
  });

  test('BFF_CLIENT_PRIVATE_KEY_FILE is read', () => {
    const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const env = without(baseEnv({ BFF_CLIENT_AUTH_METHOD: 'private_key_jwt', BFF_CLIENT_PRIVATE_KEY_FILE: secretFile('key.pem', pem) }), 'BFF_CLIENT_SECRET');
    expect(loadConfig(env, cwd).clientPrivateKey).toBe(pem.trim());
  });

  test.each(['BFF_CLIENT_SECRET', 'BFF_SESSION_SECRETS', 'BFF_REDIS_URL'])('setting both %s and %s_FILE is an error', (name) => {
    const env = baseEnv({ [name]: name === 'BFF_REDIS_URL' ? 'redis://redis:6379' : SECRET_A, [`${name}_FILE`]: secretFile('dup', SECRET_B) });
    const error = configError(env, cwd);
    expect(problemsNaming(error.problems, name)).toHaveLength(1);
    expect(error.message).toContain(`${name}_FILE`);
    expect(error.message).not.toContain(SECRET_B);
  });

  test.each(['BFF_CLIENT_SECRET', 'BFF_SESSION_SECRETS', 'BFF_REDIS_URL'])('an unreadable %s_FILE is an error naming it', (name) => {
    const env = without(baseEnv({ [`${name}_FILE`]: join(cwd, 'no-such-file') }), name);
    const problems = problemsOf(env, cwd);
    expect(problemsNaming(problems, `${name}_FILE`)).toHaveLength(1);
  });

  test('a secret read from a file is not echoed when it is invalid', () => {
    const short = 'short-from-file';
    const env = without(baseEnv({ BFF_SESSION_SECRETS_FILE: secretFile('s', `${short}\n`) }), 'BFF_SESSION_SECRETS');
    const error = configError(env, cwd);
    expect(problemsNaming(error.problems, 'BFF_SESSION_SECRETS')).toHaveLength(1);
    expect(error.message).not.toContain(short);
  });
});

describe('env file', () => {
  test('.env in cwd is loaded', () => {
    writeFileSync(join(cwd, '.env'), `BFF_CLIENT_ID=from-dotenv\nBFF_PORT=4000\n`);
    const config = loadConfig(without(baseEnv(), 'BFF_CLIENT_ID'), cwd);
    expect(config.clientId).toBe('from-dotenv');
    expect(config.port).toBe(4000);
  });

  test('the real environment wins over the file', () => {
    writeFileSync(join(cwd, '.env'), `BFF_CLIENT_ID=from-dotenv\nBFF_PORT=4000\n`);
    const config = loadConfig(baseEnv({ BFF_CLIENT_ID: 'from-env' }), cwd);
    expect(config.clientId).toBe('from-env');
    expect(config.port).toBe(4000);
  });

  test('BFF_ENV_FILE selects another file, relative to cwd, instead of .env', () => {
    writeFileSync(join(cwd, '.env'), `BFF_CLIENT_ID=from-dotenv\nBFF_LOG_LEVEL=debug\n`);
    writeFileSync(join(cwd, 'gateway.env'), `# comment\nBFF_CLIENT_ID="from-named-file"\n`);
    const config = loadConfig(without(baseEnv({ BFF_ENV_FILE: 'gateway.env' }), 'BFF_CLIENT_ID'), cwd);
    expect(config.clientId).toBe('from-named-file');
    expect(config.logLevel).toBe('info');
  });

  test('a missing BFF_ENV_FILE is an error naming it', () => {
    const problems = problemsOf(baseEnv({ BFF_ENV_FILE: 'missing.env' }), cwd);
    expect(problemsNaming(problems, 'BFF_ENV_FILE')).toHaveLength(1);
  });

  test('a *_FILE secret can itself come from the env file', () => {
    writeFileSync(join(cwd, 'client-secret'), 'dotenv-file-secret\n');
    writeFileSync(join(cwd, '.env'), `BFF_CLIENT_SECRET_FILE=${join(cwd, 'client-secret')}\n`);
    expect(loadConfig(without(baseEnv(), 'BFF_CLIENT_SECRET'), cwd).clientSecret).toBe('dotenv-file-secret');
  });
});

describe('values', () => {
  test.each([
    ['30m', 1800],
    ['90', 90],
    ['90s', 90],
    ['2h', 7200],
  ])('idle timeout %s parses to %d seconds', (text, seconds) => {
    expect(loadConfig(baseEnv({ BFF_SESSION_IDLE_TIMEOUT: text }), cwd).sessionIdleTimeoutSec).toBe(seconds);
  });

  test('absolute timeout 12h and 7d parse', () => {
    expect(loadConfig(baseEnv({ BFF_SESSION_ABSOLUTE_TIMEOUT: '12h' }), cwd).sessionAbsoluteTimeoutSec).toBe(43200);
    expect(loadConfig(baseEnv({ BFF_SESSION_ABSOLUTE_TIMEOUT: '7d' }), cwd).sessionAbsoluteTimeoutSec).toBe(604800);
  });

  test.each(['abc', '0', '-5', '10 minutes', '1.5h'])('duration %p is an error naming the variable', (text) => {
    expect(problemsNaming(problemsOf(baseEnv({ BFF_SESSION_IDLE_TIMEOUT: text }), cwd), 'BFF_SESSION_IDLE_TIMEOUT')).toHaveLength(1);
    expect(problemsNaming(problemsOf(baseEnv({ BFF_SESSION_ABSOLUTE_TIMEOUT: text }), cwd), 'BFF_SESSION_ABSOLUTE_TIMEOUT')).toHaveLength(1);
  });

  test('an idle timeout longer than the absolute one is refused', () => {
    const problems = problemsOf(baseEnv({ BFF_SESSION_IDLE_TIMEOUT: '2h', BFF_SESSION_ABSOLUTE_TIMEOUT: '1h' }), cwd);
    expect(problemsNaming(problems, 'BFF_SESSION_IDLE_TIMEOUT')).toHaveLength(1);
  });

  test('BFF_SAMESITE=none is refused; lax is accepted', () => {
    expect(problemsNaming(problemsOf(baseEnv({ BFF_SAMESITE: 'none' }), cwd), 'BFF_SAMESITE')).toHaveLength(1);
    expect(loadConfig(baseEnv({ BFF_SAMESITE: 'lax' }), cwd).sameSite).toBe('lax');
  });

  test.each(['https://app.example.com/app', 'https://app.example.com/?x=1', 'https://app.example.com/#top', 'https://user:pw@app.example.com'])(
    'public URL %s that is not a bare origin is refused',
    (url) => {
      expect(problemsNaming(problemsOf(baseEnv({ BFF_PUBLIC_URL: url }), cwd), 'BFF_PUBLIC_URL')).toHaveLength(1);
    },
  );

  test('a public URL with a trailing slash is a bare origin', () => {
    const config = loadConfig(baseEnv({ BFF_PUBLIC_URL: 'https://app.example.com:8443/' }), cwd);
    expect(config.publicOrigin).toBe('https://app.example.com:8443');
    expect(config.redirectUri).toBe('https://app.example.com:8443/auth/callback');
  });

  test('BFF_ADMIN_PORT equal to BFF_PORT is refused, also against the default', () => {
    expect(problemsNaming(problemsOf(baseEnv({ BFF_PORT: '8080', BFF_ADMIN_PORT: '8080' }), cwd), 'BFF_ADMIN_PORT')).toHaveLength(1);
    expect(problemsNaming(problemsOf(baseEnv({ BFF_ADMIN_PORT: '3000' }), cwd), 'BFF_ADMIN_PORT')).toHaveLength(1);
    const config = loadConfig(baseEnv({ BFF_PORT: '8080', BFF_ADMIN_PORT: '8081' }), cwd);
    expect([config.port, config.adminPort]).toEqual([8080, 8081]);
  });

  test('BFF_ADMIN_HOST unset leaves the admin listen address to the main one (all interfaces)', () => {
    expect('adminHost' in loadConfig(baseEnv(), cwd)).toBe(false);
    expect('adminHost' in loadConfig(baseEnv({ BFF_ADMIN_HOST: '  ' }), cwd)).toBe(false);
  });

  test.each(['127.0.0.1', '127.0.0.2', '0.0.0.0', '10.42.0.17', '::1', '::', 'fd00::5', 'localhost', 'admin.pod.cluster.local', 'metrics-0.internal.'])(
    'BFF_ADMIN_HOST %p is an address or hostname to listen on',
    (value) => {
      expect(loadConfig(baseEnv({ BFF_ADMIN_HOST: value }), cwd).adminHost).toBe(value);
    },
  );

  test.each(['127.0.0.1:9090', '[::1]', 'http://127.0.0.1', '127.0.0.256', '999.1.1.1', '10.1', 'admin host', 'admin_host', '-admin.internal', 'admin..internal', 'a'.repeat(64)])(
    'BFF_ADMIN_HOST %p is refused by name, with what it must be',
    (value) => {
      const problems = problemsNaming(problemsOf(baseEnv({ BFF_ADMIN_HOST: value }), cwd), 'BFF_ADMIN_HOST');
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^BFF_ADMIN_HOST: must be an IP address .* or a hostname/);
    },
  );

  test.each(['70000', 'http', '-1'])('port %p is refused', (value) => {
    expect(problemsNaming(problemsOf(baseEnv({ BFF_PORT: value }), cwd), 'BFF_PORT')).toHaveLength(1);
  });

  test('scopes without openid are refused; custom scopes are kept', () => {
    expect(problemsNaming(problemsOf(baseEnv({ BFF_SCOPES: 'profile email' }), cwd), 'BFF_SCOPES')).toHaveLength(1);
    expect(loadConfig(baseEnv({ BFF_SCOPES: 'openid  orders:read' }), cwd).scopes).toBe('openid orders:read');
  });

  test('a __Host- cookie name on an http public URL is refused', () => {
    const problems = problemsOf(baseEnv({ BFF_PUBLIC_URL: 'http://localhost:3000', BFF_COOKIE_NAME: '__Host-x' }), cwd);
    expect(problemsNaming(problems, 'BFF_COOKIE_NAME')).toHaveLength(1);
  });

  test('a redis URL of another scheme is refused without echoing it', () => {
    const url = 'http://:hunter2pw@redis:6379';
    const error = configError(baseEnv({ BFF_REDIS_URL: url }), cwd);
    expect(problemsNaming(error.problems, 'BFF_REDIS_URL')).toHaveLength(1);
    expect(error.message).not.toContain('hunter2pw');
  });

  test('the CSRF header name is lower-cased', () => {
    expect(loadConfig(baseEnv({ BFF_CSRF_HEADER: 'X-Requested-With' }), cwd).csrfHeader).toBe('x-requested-with');
  });
});

describe('routes file', () => {
  function routesProblems(content: string): readonly string[] {
    const path = join(cwd, 'routes-under-test.json');
    writeFileSync(path, content);
    return problemsOf(baseEnv({ BFF_ROUTES_FILE: path }), cwd);
  }
  function route(extra: Record<string, unknown>): string {
    return JSON.stringify({ routes: [{ prefix: '/api/orders', target: 'http://orders:8080', token: 'user', ...extra }] });
  }

  test('BFF_ROUTES_FILE is resolved against cwd', () => {
    writeFileSync(join(cwd, 'other.json'), route({ prefix: '/api/other/' }));
    const config = loadConfig(baseEnv({ BFF_ROUTES_FILE: 'other.json' }), cwd);
    expect(config.routesFile).toBe(join(cwd, 'other.json'));
    expect(config.routes.map((r) => r.prefix)).toEqual(['/api/other']);
  });

  test.each(['orders:8080', 'ftp://x', '/relative', 'http://orders:8080/?q=1', 'orders'])('target %p is an error naming routes.0.target', (target) => {
    const problems = routesProblems(route({ target }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('routes.0.target');
  });

  test.each([
    ['/api/x', '/api/x'],
    ['/api/x', '/api/x/'],
  ])('prefixes %p and %p collide', (first, second) => {
    const problems = routesProblems(
      JSON.stringify({
        routes: [
          { prefix: first, target: 'http://a:1', token: 'user' },
          { prefix: second, target: 'http://b:1', token: 'user' },
        ],
      }),
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('routes.1.prefix');
    expect(problems[0]).toContain('routes.0');
  });

  test.each(['client', 'user-or-client'])('token mode %p is accepted with an optional scope and resource', (token) => {
    const path = join(cwd, 'routes-under-test.json');
    writeFileSync(path, route({ token, scope: 'orders:read orders:write', resource: 'https://orders.example.com' }));
    const [loaded] = loadConfig(baseEnv({ BFF_ROUTES_FILE: path }), cwd).routes;
    expect(loaded).toMatchObject({ token, scope: 'orders:read orders:write', resource: 'https://orders.example.com' });
  });

  test.each([
    ['rewrite together with stripPrefix', { rewrite: '/v1', stripPrefix: true }, 'set either rewrite or stripPrefix'],
    ['a gateway-owned header name', { headers: { Authorization: 'Bearer x' } }, 'routes.0.headers'],
    ['a header value with a line break', { headers: { 'X-A': 'a\r\nX-B: b' } }, 'routes.0.headers'],
    ['userHeaders on a client route', { token: 'client', userHeaders: ['email'] }, 'routes.0.userHeaders'],
    ['a userHeaders entry that is not a claim name', { userHeaders: ['e-mail'] }, 'routes.0.userHeaders'],
    ['caFile on an http target', { caFile: 'ca.pem' }, 'routes.0.caFile'],
    ['an unreadable caFile', { target: 'https://orders:8443', caFile: 'missing-ca.pem' }, 'routes.0.caFile'],
  ])('a route with %s is refused', (_name, extra, expected) => {
    const problems = routesProblems(route(extra));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(expected);
  });

  test('stripPrefix is rewrite "/"', () => {
    const path = join(cwd, 'routes-under-test.json');
    writeFileSync(path, route({ stripPrefix: true }));
    expect(loadConfig(baseEnv({ BFF_ROUTES_FILE: path }), cwd).routes[0]?.rewrite).toBe('/');
  });

  test('scope is refused on user routes, resource on routes that send no token, and malformed ones anywhere', () => {
    expect(routesProblems(route({ token: 'user', scope: 'x' }))).toEqual([expect.stringContaining('routes.0 (route /api/orders).scope: applies only to token "client", "user-or-client", "exchange"')]);
    expect(routesProblems(route({ token: 'none', resource: 'https://orders.example.com' }))).toEqual([expect.stringContaining('routes.0 (route /api/orders).resource: the route sends no token')]);
    const problems = routesProblems(route({ token: 'client', scope: 'two  spaces', resource: 'not a uri' }));
    expect(problems).toHaveLength(2);
    expect(problems.join('\n')).toContain('routes.0.scope');
    expect(problems.join('\n')).toContain('routes.0.resource');
  });

  test.each(['user', 'user-optional', 'user-or-client'])('resource on a %p route is the audience of the user token (RFC 8707)', (token) => {
    const path = join(cwd, 'routes-under-test.json');
    writeFileSync(path, route({ token, resource: 'https://orders.example.com' }));
    expect(loadConfig(baseEnv({ BFF_ROUTES_FILE: path }), cwd).routes[0]).toMatchObject({ token, resource: 'https://orders.example.com' });
  });

  test('an exchange route takes audience, resource and scope', () => {
    const path = join(cwd, 'routes-under-test.json');
    writeFileSync(path, route({ token: 'exchange', audience: 'orders-api', resource: 'https://orders.example.com', scope: 'orders:read' }));
    expect(loadConfig(baseEnv({ BFF_ROUTES_FILE: path }), cwd).routes[0]).toMatchObject({ token: 'exchange', audience: 'orders-api', resource: 'https://orders.example.com', scope: 'orders:read' });
  });

  test('require and stepUp are parsed as written', () => {
    const path = join(cwd, 'routes-under-test.json');
    writeFileSync(path, route({ require: { claims: { groups: ['admin', 'ops'], email_verified: true, level: 3 }, acr: ['gold', 'gold'] }, stepUp: { acr: 'gold', maxAge: 300 } }));
    expect(loadConfig(baseEnv({ BFF_ROUTES_FILE: path }), cwd).routes[0]).toMatchObject({
      require: { claims: { groups: ['admin', 'ops'], email_verified: true, level: 3 }, acr: ['gold'] },
      stepUp: { acr: 'gold', maxAge: 300 },
    });
  });

  test.each([
    ['exchange without audience or resource', { token: 'exchange' }, 'routes.0 (route /api/orders): token "exchange" needs "audience" or "resource"'],
    ['audience on a user route', { audience: 'orders-api' }, 'routes.0 (route /api/orders).audience: applies only to token "exchange"'],
    ['a resource that is not an absolute URI', { resource: 'orders' }, 'routes.0.resource: must be an absolute URI'],
    ['a resource with a fragment', { resource: 'https://orders.example.com/#x' }, 'routes.0.resource: must be an absolute URI'],
    ['an unknown claims operator', { require: { claims: { groups: { $in: ['admin'] } } } }, 'routes.0 (route /api/orders).require.claims.groups: unknown operator "$in"'],
    ['an empty claims list', { require: { claims: { groups: [] } } }, 'require.claims.groups: must list at least one'],
    ['a claims list holding an object', { require: { claims: { groups: ['admin', { not: 'x' }] } } }, 'require.claims.groups: must list at least one string, number or boolean'],
    ['a null claim rule', { require: { claims: { groups: null } } }, 'require.claims.groups: must be a string, number, boolean or a list of them'],
    ['an empty require', { require: {} }, 'routes.0.require: must name claims, acr or both'],
    ['an unknown require member', { require: { acr: ['gold'], roles: ['admin'] } }, 'routes.0.require: Unrecognized key: "roles"'],
    ['an empty acr list', { require: { acr: [] } }, 'routes.0.require.acr: must list at least one value'],
    ['require on a user-optional route', { token: 'user-optional', require: { acr: ['gold'] } }, '.require: needs a signed-in user, so token "user", "exchange"'],
    ['stepUp on a client route', { token: 'client', stepUp: { maxAge: 60 } }, '.stepUp: needs a signed-in user'],
    ['an empty stepUp', { stepUp: {} }, 'routes.0.stepUp: must name acr, maxAge or both'],
    ['a stepUp maxAge that is not whole seconds', { stepUp: { maxAge: 1.5 } }, 'routes.0.stepUp.maxAge: must be whole seconds'],
    ['a negative stepUp maxAge', { stepUp: { maxAge: -1 } }, 'routes.0.stepUp.maxAge'],
    ['a stepUp acr with a space', { stepUp: { acr: 'gold silver' } }, 'routes.0.stepUp.acr: must be one acr value'],
  ])('a route with %s is refused, by name', (_name, extra, expected) => {
    const problems = routesProblems(route(extra));
    expect(problems).toEqual([expect.stringContaining(expected)]);
  });

  test('an unknown token mode is refused, listing the valid ones', () => {
    const problems = routesProblems(route({ token: 'admin' }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('routes.0.token');
    expect(problems[0]).toContain('user-optional');
  });

  test('a missing token mode is refused', () => {
    const problems = routesProblems(JSON.stringify({ routes: [{ prefix: '/api/x', target: 'http://x:1' }] }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('routes.0.token');
  });

  test.each(['/auth/x', '/apix', '/', 'api/x', '/api/%2e%2e', '/api//x'])('prefix %p outside plain /api segments is refused', (prefix) => {
    const problems = routesProblems(route({ prefix }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('routes.0.prefix');
  });

  test.each(['/api/..', '/api/../auth', '/api/x/./y'])('prefix %p with dot segments is refused', (prefix) => {
    const problems = routesProblems(route({ prefix }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('routes.0.prefix');
  });

  test('a rewrite with dot segments or not starting with / is refused', () => {
    expect(routesProblems(route({ rewrite: '/v1/../admin' }))[0]).toContain('routes.0.rewrite');
    expect(routesProblems(route({ rewrite: 'v1' }))[0]).toContain('routes.0.rewrite');
  });

  test('an unknown key in a route is refused and named', () => {
    const problems = routesProblems(route({ hosts: ['x'] }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('routes.0');
    expect(problems[0]).toContain('hosts');
  });

  test('an unknown top-level key is refused and named', () => {
    const problems = routesProblems(JSON.stringify({ routes: [], extra: true }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('extra');
  });

  test('several route problems are reported together with environment problems', () => {
    const path = join(cwd, 'bad.json');
    writeFileSync(path, JSON.stringify({ routes: [{ prefix: '/auth', target: 'ftp://x', token: 'admin' }] }));
    const problems = problemsOf(without(baseEnv({ BFF_ROUTES_FILE: path }), 'BFF_CLIENT_ID'), cwd);
    expect(problemsNaming(problems, 'BFF_CLIENT_ID')).toHaveLength(1);
    expect(problems.filter((p) => p.includes('routes.0.'))).toHaveLength(3);
  });

  test('invalid JSON is a clear error naming the file', () => {
    const problems = routesProblems('{ "routes": [ ');
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('routes-under-test.json');
    expect(problems[0]).toContain('not valid JSON');
  });

  test('a missing routes file is an error naming BFF_ROUTES_FILE', () => {
    const problems = problemsOf(baseEnv({ BFF_ROUTES_FILE: join(cwd, 'nope.json') }), cwd);
    expect(problems).toHaveLength(1);
    expect(problemsNaming(problems, 'BFF_ROUTES_FILE')[0]).toContain('nope.json');
  });

  test('the default config/routes.json missing from cwd is an error naming BFF_ROUTES_FILE', () => {
    rmSync(join(cwd, 'config'), { recursive: true });
    expect(problemsNaming(problemsOf(baseEnv(), cwd), 'BFF_ROUTES_FILE')).toHaveLength(1);
  });

  test('the shipped config/routes.json is valid', () => {
    const config = loadConfig(baseEnv(), REPO_ROOT);
    expect(config.routes.length).toBeGreaterThan(0);
  });
});

describe('.env.example', () => {
  const example = readFileSync(join(REPO_ROOT, '.env.example'), 'utf8');

  test('documents every variable the configuration reads, and the *_FILE forms', () => {
    const sources = ['load.ts', 'env-file.ts', 'secrets.ts', 'routes.ts'].map((f) => readFileSync(join(REPO_ROOT, 'src', 'config', f), 'utf8')).join('\n');
    const read = new Set(sources.match(/BFF_[A-Z_]+[A-Z]/g));
    const secretList = /SECRET_VARIABLES = \[([^\]]*)\]/.exec(sources)?.[1] ?? '';
    const secrets = secretList.match(/BFF_[A-Z_]+[A-Z]/g) ?? [];
    expect(secrets.length).toBeGreaterThanOrEqual(3);
    for (const name of secrets) read.add(`${name}_FILE`);
    const documented = new Set(example.match(/^#?\s*BFF_[A-Z_]+(?==)/gm)?.map((line) => line.replace(/^#?\s*/, '')));
    const missing = [...read].filter((name) => !documented.has(name));
    expect(missing).toEqual([]);
  });

  test('its placeholders parse, and the session secret placeholder is refused so it cannot be deployed as is', () => {
    const problems = problemsOf({ BFF_ENV_FILE: join(REPO_ROOT, '.env.example') }, REPO_ROOT);
    expect(problems.map((p) => p.slice(0, p.indexOf(':')))).toEqual(['BFF_SESSION_SECRETS']);
  });
});
