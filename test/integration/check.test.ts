import { spawn } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import type { ClientAuthMethod, ClientMetadata, JWK } from 'oidc-provider';
import { runCheck } from '../../src/ops/check.ts';
import { TEST_SESSION_SECRET } from '../support/gateway.ts';
import { startIdp, TEST_CLIENT_ID, TEST_CLIENT_SECRET, type TestIdp } from '../support/idp.ts';
import { getFreePort } from '../support/ports.ts';
import type { TokenAnswer } from '../support/token-endpoint.ts';
import { startRedis, type RedisServer } from '../support/redis.ts';
import { startRedisCluster, startRedisSentinel } from '../support/redis-cluster.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const ENTRY = join(ROOT, 'src/index.ts');
const REDIS_PASSWORD = 'redis-Pa55word-XYZ';

let idp: TestIdp;
let redis: RedisServer;
let dir: string;
let good: Record<string, string>;
/** Ports nothing listens on: an unreachable IdP and an unreachable Redis. */
let closedPort: number;

beforeAll(async () => {
  idp = await startIdp({ redirectUris: ['http://127.0.0.1:1/auth/callback'] });
  // A Redis of its own, with a password, to prove the password never reaches the report.
  redis = await startRedis();
  closedPort = await getFreePort();
  dir = mkdtempSync(join(tmpdir(), 'bff-check-'));
  writeFileSync(
    join(dir, 'routes.json'),
    JSON.stringify({
      routes: [
        { prefix: '/api/orders', target: 'http://orders:8080', rewrite: '/v1/orders', token: 'user', methods: ['GET', 'POST'] },
        { prefix: '/api/admin', target: 'http://admin:8080', token: 'user', require: { claims: { groups: ['admin'], email_verified: true }, acr: ['gold'] }, stepUp: { acr: 'gold', maxAge: 300 } },
      ],
    }),
  );
  writeFileSync(join(dir, 'bad-routes.json'), JSON.stringify({ routes: [{ prefix: '/orders', target: 'http://orders:8080', token: 'user' }] }));
  writeFileSync(join(dir, 'client-secret'), `${TEST_CLIENT_SECRET}\n`);
  good = {
    BFF_PUBLIC_URL: 'https://app.example.com',
    BFF_ISSUER_URL: idp.issuer,
    BFF_ALLOW_INSECURE_ISSUER: 'true',
    BFF_CLIENT_ID: TEST_CLIENT_ID,
    BFF_CLIENT_SECRET_FILE: join(dir, 'client-secret'),
    BFF_SESSION_SECRETS: TEST_SESSION_SECRET,
    BFF_REDIS_URL: `redis://:${REDIS_PASSWORD}@127.0.0.1:${redis.port}/0`,
    BFF_ROUTES_FILE: join(dir, 'routes.json'),
  };
  await setRedisPassword(redis.port, REDIS_PASSWORD);
});
afterAll(async () => {
  await redis?.stop();
  await idp?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function check(env: Record<string, string>): Promise<{ code: number; output: string }> {
  const lines: string[] = [];
  const code = await runCheck({ env, cwd: dir, write: (line) => lines.push(line), timeoutMs: 3000 });
  return { code, output: lines.join('\n') };
}

function expectNoSecret(output: string): void {
  for (const secret of [TEST_CLIENT_SECRET, TEST_SESSION_SECRET, REDIS_PASSWORD]) expect(output).not.toContain(secret);
}

describe('a good configuration', () => {
  test('exit 0, every check ok, the effective configuration with secrets masked and defaults marked', async () => {
    const { code, output } = await check(good);
    expect(output).toContain('Result: OK');
    expect(code).toBe(0);
    expect(output).toMatch(/ok {4}configuration: every variable and the routes file are valid/);
    expect(output).toMatch(new RegExp(`ok {4}BFF_ISSUER_URL: discovery answered in \\d+ ms \\(issuer ${idp.issuer}; PAR, end-session, revocation, back-channel logout\\)`));
    expect(output).toMatch(/ok {4}BFF_REDIS_URL: redis:\/\/:\*{8}@127\.0\.0\.1:\d+\/0 answered PING in \d+ ms/);
    expect(output).not.toMatch(/FAIL|warn /);
    expect(output).toMatch(/BFF_CLIENT_SECRET +\*{8} \(from file\)/);
    expect(output).toMatch(/BFF_SESSION_SECRETS +\*{8} \(1 secret, the first one active\)/);
    expect(output).toMatch(/BFF_SESSION_IDLE_TIMEOUT +1800s \(default\)/);
    expect(output).toMatch(/BFF_COOKIE_NAME +__Host-bff \(default\)/);
    expect(output).toContain('/api/orders -> http://orders:8080/v1/orders  token=user  methods=GET,POST  websocket=no  timeout=30000ms');
    // The claims a rule looks at, not the values it wants: which groups may pass is not for the output of a check.
    expect(output).toContain(
      '/api/admin -> http://admin:8080/api/admin  token=user  methods=any  websocket=no  timeout=30000ms  require=claims(groups,email_verified)+acr(gold)  stepUp=acr:gold,maxAge:300s',
    );
    expect(output).toMatch(/ok {4}BFF_CLIENT_SECRET: the token endpoint accepted the client credentials \(client_secret_basic;/);
    expectNoSecret(output);
  });

  test('a wrong Redis password fails the check without showing either password', async () => {
    const { code, output } = await check({ ...good, BFF_REDIS_URL: `redis://:wrong-${REDIS_PASSWORD}@127.0.0.1:${redis.port}/0` });
    expect(code).toBe(1);
    expect(output).toMatch(/FAIL {2}BFF_REDIS_URL: redis:\/\/:\*{8}@127\.0\.0\.1:\d+\/0 PING failed: WRONGPASS/);
    expectNoSecret(output);
  });

  test('an unknown variable is a warning with a did-you-mean, not a failure', async () => {
    const { code, output } = await check({ ...good, BFF_SCOPE: 'openid' });
    expect(code).toBe(0);
    expect(output).toContain('warn  BFF_SCOPE: not a variable bff-gateway knows (it is ignored); did you mean BFF_SCOPES?');
    expect(output).toContain('Result: OK (1 warning)');
  });
});

/** Five independent ways to get it wrong, each with the variable the report must name. */
const BREAKAGES: Array<[string, () => Record<string, string>, RegExp]> = [
  ['a session secret that is too short', () => ({ BFF_SESSION_SECRETS: 'too-short' }), /FAIL {2}BFF_SESSION_SECRETS: entry 1 is 9 bytes; each must be at least 32 bytes/],
  ['a public URL with a path', () => ({ BFF_PUBLIC_URL: 'https://app.example.com/app' }), /FAIL {2}BFF_PUBLIC_URL: must be an origin only/],
  ['a route outside /api', () => ({ BFF_ROUTES_FILE: join(dir, 'bad-routes.json') }), /FAIL {2}.*bad-routes\.json: routes\.0\.prefix/],
  [
    'an unreachable OpenID provider',
    () => ({ BFF_ISSUER_URL: `http://127.0.0.1:${closedPort}` }),
    /FAIL {2}BFF_ISSUER_URL: OpenID provider discovery at http:\/\/127\.0\.0\.1:\d+\/ failed: fetch failed \(ECONNREFUSED\)/,
  ],
  [
    'an unreachable Redis',
    () => ({ BFF_REDIS_URL: `redis://:${REDIS_PASSWORD}@127.0.0.1:${closedPort}` }),
    /FAIL {2}BFF_REDIS_URL: redis:\/\/:\*{8}@127\.0\.0\.1:\d+ PING failed: connect ECONNREFUSED/,
  ],
];

describe('a configuration broken in five ways', () => {
  test('all five at once: exit 1, each named in the report, and nothing secret in it', async () => {
    const broken = Object.assign({ ...good }, ...BREAKAGES.map(([, change]) => change()));
    const { code, output } = await check(broken);
    expect(code).toBe(1);
    for (const [, , line] of BREAKAGES) expect(output).toMatch(line);
    expect(output).toContain('Result: 5 problems: fix them before deploying');
    expectNoSecret(output);
  });

  test.each(BREAKAGES)('%s alone: exit 1 with exactly that problem', async (_name, change, line) => {
    const { code, output } = await check({ ...good, ...change() });
    expect(code).toBe(1);
    expect(output).toMatch(line);
    expect(output.match(/^ {2}FAIL/gm)).toHaveLength(1);
    expectNoSecret(output);
  });
});

describe('Redis topologies other than a single node', () => {
  function goodWithout(): Record<string, string> {
    const { BFF_REDIS_URL: _url, ...rest } = good;
    return rest;
  }

  test('a Sentinel-managed master is pinged through the Sentinel; a wrong master name fails', async () => {
    const sentinel = await startRedisSentinel();
    try {
      const ok = await check({ ...goodWithout(), BFF_REDIS_SENTINELS: sentinel.sentinels, BFF_REDIS_SENTINEL_NAME: sentinel.name });
      expect(ok.output).toMatch(new RegExp(`ok {4}BFF_REDIS_SENTINELS: the Sentinel master "${sentinel.name}" answered PING in \\d+ ms`));
      expect(ok.code).toBe(0);
      const wrong = await check({ ...goodWithout(), BFF_REDIS_SENTINELS: sentinel.sentinels, BFF_REDIS_SENTINEL_NAME: 'no-such-master' });
      expect(wrong.output).toMatch(/FAIL {2}BFF_REDIS_SENTINELS: the Sentinel master "no-such-master" did not answer/);
      expect(wrong.code).toBe(1);
    } finally {
      await sentinel.stop();
    }
  }, 60_000);

  test('a cluster is pinged once its slots are known', async () => {
    const cluster = await startRedisCluster();
    try {
      const { code, output } = await check({ ...goodWithout(), BFF_REDIS_CLUSTER_NODES: cluster.nodeUrls.join(',') });
      expect(output).toMatch(/ok {4}BFF_REDIS_CLUSTER_NODES: the cluster \(3 seed nodes\) answered PING in \d+ ms/);
      expect(output).not.toContain('BFF_REDIS_URL: unset');
      expect(code).toBe(0);
    } finally {
      await cluster.stop();
    }
  }, 60_000);
});

describe('the client credentials, proved at the token endpoint', () => {
  /** One client per authentication method, each with its own credentials. */
  let methods: TestIdp;
  const jwtKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const otherKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const pem = (key: KeyObject): string => key.export({ format: 'pem', type: 'pkcs8' }).toString();
  const POST_SECRET = 'bff-post-secret-which-is-long-enough';

  beforeAll(async () => {
    const client = (id: string, method: ClientAuthMethod, extra: Partial<ClientMetadata>): ClientMetadata => ({
      client_id: id,
      redirect_uris: ['https://app.example.com/auth/callback'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: method,
      ...extra,
    });
    methods = await startIdp({
      clients: [
        client(TEST_CLIENT_ID, 'client_secret_basic', { client_secret: TEST_CLIENT_SECRET }),
        client('bff-post', 'client_secret_post', { client_secret: POST_SECRET }),
        client('bff-jwt', 'private_key_jwt', { jwks: { keys: [{ ...jwtKey.publicKey.export({ format: 'jwk' }), kid: 'bff-jwt', alg: 'RS256', use: 'sig' } as JWK] } }),
      ],
    });
  });
  afterAll(async () => {
    await methods?.close();
  });
  afterEach(() => methods.tokenEndpoint.clear());

  function envFor(method: 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt', right: boolean): Record<string, string> {
    const { BFF_CLIENT_SECRET_FILE: _file, BFF_REDIS_URL: _redis, ...base } = good;
    const env = { ...base, BFF_ISSUER_URL: methods.issuer, BFF_CLIENT_AUTH_METHOD: method };
    if (method === 'client_secret_basic') return { ...env, BFF_CLIENT_ID: TEST_CLIENT_ID, BFF_CLIENT_SECRET: right ? TEST_CLIENT_SECRET : 'a-wrong-secret-of-sufficient-length' };
    if (method === 'client_secret_post') return { ...env, BFF_CLIENT_ID: 'bff-post', BFF_CLIENT_SECRET: right ? POST_SECRET : 'a-wrong-secret-of-sufficient-length' };
    return { ...env, BFF_CLIENT_ID: 'bff-jwt', BFF_CLIENT_PRIVATE_KEY: pem(right ? jwtKey.privateKey : otherKey) };
  }

  const METHODS: Array<['client_secret_basic' | 'client_secret_post' | 'private_key_jwt', string]> = [
    ['client_secret_basic', 'BFF_CLIENT_SECRET'],
    ['client_secret_post', 'BFF_CLIENT_SECRET'],
    ['private_key_jwt', 'BFF_CLIENT_PRIVATE_KEY'],
  ];

  test.each(METHODS)('%s: the right credentials exit 0, the wrong ones exit 1 naming %s, and the provider issued no token either way', async (method, variable) => {
    const requests = methods.tokenEndpoint.requests('authorization_code');
    const grants = methods.counts.authorizationCode;

    const right = await check(envFor(method, true));
    expect(right.output).toMatch(new RegExp(`ok {4}${variable}: the token endpoint accepted the client credentials \\(${method};`));
    expect(right.output).toContain('Result: OK');
    expect(right.code).toBe(0);

    const wrong = await check(envFor(method, false));
    expect(wrong.output).toMatch(new RegExp(`FAIL {2}${variable}: the token endpoint ${methods.issuer}/token refused the client credentials \\(invalid_client, HTTP 401`));
    expect(wrong.output.match(/^ {2}FAIL/gm)).toHaveLength(1);
    expect(wrong.code).toBe(1);

    // Each check sent exactly one code grant, for a code that does not exist: nothing was issued.
    expect(methods.tokenEndpoint.requests('authorization_code') - requests).toBe(2);
    expect(methods.counts.authorizationCode).toBe(grants);
    for (const output of [right.output, wrong.output]) {
      expectNoSecret(output);
      expect(output).not.toContain(POST_SECRET);
      expect(output).not.toContain('PRIVATE KEY');
    }
  });

  const REFUSALS: Array<[string, TokenAnswer, RegExp]> = [
    [
      "unauthorized_client (Keycloak's answer to a wrong secret)",
      { error: 'unauthorized_client', description: 'Invalid client secret' },
      /FAIL {2}BFF_CLIENT_SECRET: .* refused the client credentials \(unauthorized_client, HTTP 400: "Invalid client secret"\)/,
    ],
    ['a bare 401 with a Basic challenge', { status: 401, body: '', wwwAuthenticate: 'Basic realm="idp"' }, /FAIL {2}BFF_CLIENT_SECRET: .* refused the client credentials \(invalid_client, HTTP 401\)/],
    ['a dropped connection', { drop: true }, /FAIL {2}BFF_ISSUER_URL: the token endpoint http:\/\/localhost:\d+\/token did not answer the client credentials probe/],
    ['a 503', { status: 503, body: 'down for maintenance' }, /FAIL {2}BFF_ISSUER_URL: the token endpoint http:\/\/localhost:\d+\/token did not answer the client credentials probe: HTTP 503/],
  ];

  test.each(REFUSALS)('a token endpoint answering %s: exit 1, naming what to fix', async (_name, answer, line) => {
    methods.tokenEndpoint.answer('authorization_code', answer);
    const { code, output } = await check(envFor('client_secret_basic', true));
    expect(output).toMatch(line);
    expect(output.match(/^ {2}FAIL/gm)).toHaveLength(1);
    expect(code).toBe(1);
    expectNoSecret(output);
  });

  test('an answer that proves neither (invalid_request) is a warning, not a failure', async () => {
    methods.tokenEndpoint.answer('authorization_code', { error: 'invalid_request', description: 'redirect_uri mismatch' });
    const { code, output } = await check(envFor('client_secret_basic', true));
    expect(output).toMatch(/warn {2}BFF_CLIENT_SECRET: the token endpoint .* answered the client credentials probe with invalid_request, HTTP 400: "redirect_uri mismatch", which proves neither/);
    expect(code).toBe(0);
  });
});

describe('node src/index.ts --check', () => {
  function run(env: Record<string, string>): Promise<{ code: number | null; stdout: string }> {
    return new Promise((done, reject) => {
      const child = spawn(process.execPath, [ENTRY, '--check'], { cwd: dir, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr?.resume();
      child.once('error', reject);
      child.once('close', (code) => done({ code, stdout }));
    });
  }

  test('prints the report and exits 0 on a good configuration, without starting the gateway', async () => {
    const { code, stdout } = await run({ ...good, BFF_PORT: String(await getFreePort()) });
    expect(stdout).toContain('bff-gateway configuration check');
    expect(stdout).toContain('Result: OK');
    expect(stdout).not.toContain('listening');
    expect(code).toBe(0);
  }, 20_000);

  test('exits 1 on a wrong client secret, naming BFF_CLIENT_SECRET', async () => {
    const { code, stdout } = await run({ ...good, BFF_CLIENT_SECRET_FILE: '', BFF_CLIENT_SECRET: 'a-wrong-secret-of-sufficient-length' });
    expect(stdout).toMatch(/FAIL {2}BFF_CLIENT_SECRET: the token endpoint .* refused the client credentials \(invalid_client, HTTP 401/);
    expect(stdout).not.toContain('a-wrong-secret-of-sufficient-length');
    expect(code).toBe(1);
  }, 20_000);

  test('exits 1 on a broken one', async () => {
    const { code, stdout } = await run({ ...good, BFF_SESSION_SECRETS: 'too-short' });
    expect(stdout).toContain('FAIL  BFF_SESSION_SECRETS');
    expect(code).toBe(1);
  }, 20_000);

  test('npm run check runs it on the build, through the bff-gateway command', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string>; bin: Record<string, string> };
    expect(pkg.bin['bff-gateway']).toBe('bin/bff-gateway.js');
    expect(pkg.scripts.check).toBe('node bin/bff-gateway.js --check');
  });
});

/** CONFIG SET requirepass over a raw client: the server under test then refuses unauthenticated clients. */
async function setRedisPassword(port: number, password: string): Promise<void> {
  const { createClient } = await import('redis');
  const client = createClient({ url: `redis://127.0.0.1:${port}` });
  await client.connect();
  await client.configSet('requirepass', password);
  client.destroy();
}
