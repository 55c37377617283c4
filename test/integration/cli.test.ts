import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { CONFIG_VARIABLES, ENV_FILE_VARIABLE } from '../../src/config/variables.ts';
import { CHILD_TIMEOUT_MS, runCli, type Outcome } from '../support/cli-child.ts';
import { TEST_SESSION_SECRET } from '../support/gateway.ts';
import { startIdp, TEST_CLIENT_ID, TEST_CLIENT_SECRET, type TestIdp } from '../support/idp.ts';
import { testRedisUrl } from '../support/redis.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** A scratch working directory without .env: the environment given is all the child sees (PATH aside). */
let cwd: string;

beforeAll(() => {
  cwd = mkdtempSync(join(tmpdir(), 'bff-cli-'));
});
afterAll(() => {
  rmSync(cwd, { recursive: true, force: true });
});

/** `node src/index.ts <args>` as an operator runs it, with exactly the environment given. */
const run = (args: string[], env: Record<string, string> = {}): Promise<Outcome> => runCli(args, { cwd, env });

describe('with an empty environment', () => {
  test('secret prints a new session secret each time: 64 base64 characters (48 random bytes)', async () => {
    const first = await run(['secret']);
    const second = await run(['secret']);
    expect([first.code, first.stderr]).toEqual([0, '']);
    expect(first.stdout).toMatch(/^[A-Za-z0-9+/]{64}\n$/);
    expect(Buffer.from(first.stdout.trim(), 'base64')).toHaveLength(48);
    expect(second.stdout).not.toBe(first.stdout);
    expect((await run(['secret', '--check'])).code).toBe(2);
  });

  test(
    '--help exits 0 and lists every variable with its default',
    async () => {
      const { code, stdout, stderr } = await run(['--help']);
      expect(stderr).toBe('');
      expect(code).toBe(0);
      expect(stdout).toContain('--check --strict');
      for (const variable of [...CONFIG_VARIABLES, ENV_FILE_VARIABLE]) {
        const shown = variable.default === '—' ? 'unset' : variable.default.replace(/`/g, '');
        const line = stdout.split('\n').find((l) => new RegExp(`^ {2}${variable.name}( \\(secret\\))? {2,}`).test(l));
        expect([variable.name, line?.trim().endsWith(shown)]).toEqual([variable.name, true]);
      }
      expect(stdout).toMatch(/^ {2}BFF_SESSION_IDLE_TIMEOUT +30m$/m);
      expect(stdout).toMatch(/^ {2}BFF_CLIENT_SECRET \(secret\) +required unless private_key_jwt$/m);
    },
    CHILD_TIMEOUT_MS,
  );

  test(
    "--version exits 0 and prints package.json's version",
    async () => {
      const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
      const { code, stdout, stderr } = await run(['--version']);
      expect(stderr).toBe('');
      expect(code).toBe(0);
      expect(stdout).toBe(`${version}\n`);
    },
    CHILD_TIMEOUT_MS,
  );

  test(
    '-h and -v are the short forms',
    async () => {
      const help = await run(['-h']);
      expect(help.code).toBe(0);
      expect(help.stdout).toContain('BFF_PUBLIC_URL');
      const version = await run(['-v']);
      expect(version.code).toBe(0);
      expect(version.stdout).toMatch(/^\d+\.\d+\.\d+/);
    },
    CHILD_TIMEOUT_MS,
  );

  test(
    'an unknown option, or --strict without --check, exits 2 pointing to --help, and starts nothing',
    async () => {
      for (const args of [['--chek'], ['--strict'], ['--help', '--bogus']]) {
        const { code, stdout, stderr } = await run(args);
        expect([args, code]).toEqual([args, 2]);
        expect(stderr).toMatch(/^bff-gateway: .+; see bff-gateway --help\n$/);
        expect(stdout).toBe('');
      }
    },
    CHILD_TIMEOUT_MS,
  );
});

describe('--check --strict', () => {
  let idp: TestIdp;
  let good: Record<string, string>;
  beforeAll(async () => {
    idp = await startIdp({ redirectUris: ['https://app.example.com/auth/callback'] });
    const routesFile = join(cwd, 'routes.json');
    writeFileSync(routesFile, JSON.stringify({ routes: [] }));
    good = {
      BFF_PUBLIC_URL: 'https://app.example.com',
      BFF_ISSUER_URL: idp.issuer,
      BFF_ALLOW_INSECURE_ISSUER: 'true',
      BFF_CLIENT_ID: TEST_CLIENT_ID,
      BFF_CLIENT_SECRET: TEST_CLIENT_SECRET,
      BFF_SESSION_SECRETS: TEST_SESSION_SECRET,
      BFF_REDIS_URL: testRedisUrl(),
      BFF_ROUTES_FILE: routesFile,
    };
  });
  afterAll(async () => {
    await idp?.close();
  });

  test(
    'a mistyped variable: a warning and exit 0 without --strict, a failure and exit 1 with it',
    async () => {
      const typo = { ...good, BFF_SESION_IDLE_TIMEOUT: '5m' };
      const lenient = await run(['--check'], typo);
      expect(lenient.stdout).toContain('warn  BFF_SESION_IDLE_TIMEOUT: not a variable bff-gateway knows (it is ignored); did you mean BFF_SESSION_IDLE_TIMEOUT?');
      expect(lenient.stdout).toContain('Result: OK (1 warning)');
      expect(lenient.code).toBe(0);

      const strict = await run(['--check', '--strict'], typo);
      expect(strict.stdout).toContain('FAIL  BFF_SESION_IDLE_TIMEOUT: not a variable bff-gateway knows (it is ignored); did you mean BFF_SESSION_IDLE_TIMEOUT?');
      expect(strict.stdout).toContain('Result: 1 problem');
      expect(strict.code).toBe(1);
    },
    2 * CHILD_TIMEOUT_MS,
  );

  test(
    'control: --check --strict on a configuration without unknown variables exits 0',
    async () => {
      const { code, stdout } = await run(['--strict', '--check'], good);
      expect(stdout).toContain('Result: OK');
      expect(stdout).not.toMatch(/FAIL|warn /);
      expect(code).toBe(0);
    },
    CHILD_TIMEOUT_MS,
  );
});
