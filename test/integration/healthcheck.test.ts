import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { healthcheckUrl } from '../../src/ops/healthcheck.ts';
import { getFreePort } from '../support/ports.ts';
import { startStack, type Stack } from '../support/stack.ts';

const SCRIPT = fileURLToPath(new URL('../../src/healthcheck.ts', import.meta.url));

/** Runs the image's HEALTHCHECK command with exactly this environment; resolves with its exit code. */
function runHealthcheck(env: Record<string, string>, cwd: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SCRIPT], { env: { PATH: process.env.PATH ?? '', ...env }, cwd, stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', (code) => resolve(code ?? 1));
  });
}

function envFile(lines: string[]): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'bff-health-'));
  const file = join(dir, 'gateway.env');
  writeFileSync(file, `${lines.join('\n')}\n`);
  return { dir, file };
}

describe('the container HEALTHCHECK follows the configured admin port', () => {
  let stack: Stack;
  let adminPort: string;

  beforeAll(async () => {
    stack = await startStack();
    adminPort = new URL(stack.gw.gateway.adminUrl).port;
  });
  afterAll(async () => {
    await stack?.close();
  });

  test('an admin port set only in BFF_ENV_FILE is the one probed: exit 0', async () => {
    const { dir, file } = envFile([`BFF_ADMIN_PORT=${adminPort}`, 'BFF_ADMIN_HOST=127.0.0.1']);
    expect(await runHealthcheck({ BFF_ENV_FILE: file }, dir)).toBe(0);
  });

  test('the real environment wins over the env file, as for the gateway itself', async () => {
    const { dir, file } = envFile([`BFF_ADMIN_PORT=${await getFreePort()}`]);
    expect(await runHealthcheck({ BFF_ENV_FILE: file, BFF_ADMIN_PORT: adminPort }, dir)).toBe(0);
  });

  test('nothing listening on the configured admin port: exit 1', async () => {
    const { dir, file } = envFile([`BFF_ADMIN_PORT=${await getFreePort()}`]);
    expect(await runHealthcheck({ BFF_ENV_FILE: file }, dir)).toBe(1);
  });

  test('an unreadable BFF_ENV_FILE: exit 1, not a crash', async () => {
    const { dir } = envFile([]);
    expect(await runHealthcheck({ BFF_ENV_FILE: join(dir, 'missing.env') }, dir)).toBe(1);
  });
});

describe('healthcheckUrl', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'bff-health-url-'));
  test.each([
    [{}, 'http://127.0.0.1:9090/healthz'],
    [{ BFF_ADMIN_PORT: '9191' }, 'http://127.0.0.1:9191/healthz'],
    [{ BFF_ADMIN_HOST: '0.0.0.0' }, 'http://127.0.0.1:9090/healthz'],
    [{ BFF_ADMIN_HOST: '::' }, 'http://[::1]:9090/healthz'],
    [{ BFF_ADMIN_HOST: '10.0.0.7', BFF_ADMIN_PORT: '9000' }, 'http://10.0.0.7:9000/healthz'],
    [{ BFF_ADMIN_HOST: 'fd00::7' }, 'http://[fd00::7]:9090/healthz'],
    [{ BFF_ADMIN_HOST: 'gateway.internal' }, 'http://gateway.internal:9090/healthz'],
  ] as Array<[Record<string, string>, string]>)('%j → %s', (env, url) => {
    expect(healthcheckUrl(env, cwd)).toBe(url);
  });
});
