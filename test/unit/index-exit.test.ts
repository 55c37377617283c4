import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ENTRY = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/index.ts');
const CHILD_TIMEOUT_MS = 20_000;

const CLIENT_SECRET = 'cs-Vx93kQ7rTzL1mWp';
const SHORT_SESSION_SECRET = 'short-Hq4nB8yD';

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

let dir: string;
let child: ChildProcess | undefined;
let outcome: Outcome;

beforeAll(async () => {
  // A cwd without .env, holding a valid routes file so that only the problems under test are reported.
  dir = mkdtempSync(join(tmpdir(), 'bff-index-exit-'));
  mkdirSync(join(dir, 'config'));
  writeFileSync(join(dir, 'config', 'routes.json'), JSON.stringify({ routes: [{ prefix: '/api/x', target: 'http://x:1', token: 'user' }] }));

  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '',
    BFF_PUBLIC_URL: 'http://127.0.0.1:3999',
    BFF_ISSUER_URL: 'http://127.0.0.1:4999',
    BFF_CLIENT_SECRET: CLIENT_SECRET,
    BFF_SESSION_SECRETS: SHORT_SESSION_SECRET,
    BFF_PORT: '0',
    BFF_ADMIN_PORT: '0',
  };
  const running = spawn(process.execPath, [ENTRY], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  child = running;
  outcome = await new Promise<Outcome>((resolveOutcome, reject) => {
    let stdout = '';
    let stderr = '';
    running.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    running.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      running.kill('SIGKILL');
      reject(new Error(`src/index.ts did not exit within ${CHILD_TIMEOUT_MS} ms; stderr so far:\n${stderr}`));
    }, CHILD_TIMEOUT_MS);
    running.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    // 'close' rather than 'exit': it waits for stdio to drain, so the output is complete.
    running.on('close', (code, signal) => {
      clearTimeout(timer);
      resolveOutcome({ code, signal, stdout, stderr });
    });
  });
}, CHILD_TIMEOUT_MS + 5_000);

afterAll(() => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('node src/index.ts with a broken configuration', () => {
  test('exits with code 2, not by a signal', () => {
    expect(outcome.signal).toBeNull();
    expect(outcome.code).toBe(2);
  });

  test('names every broken variable on stderr', () => {
    expect(outcome.stderr).toContain('BFF_SESSION_SECRETS');
    expect(outcome.stderr).toContain('BFF_ISSUER_URL');
    expect(outcome.stderr).toContain('BFF_CLIENT_ID');
  });

  test('reports nothing it was not asked about', () => {
    expect(outcome.stderr).not.toContain('BFF_ROUTES_FILE');
    expect(outcome.stderr).not.toContain('BFF_CLIENT_SECRET');
  });

  test('never prints the secret values it was given', () => {
    const output = outcome.stdout + outcome.stderr;
    expect(output).not.toContain(CLIENT_SECRET);
    expect(output).not.toContain(SHORT_SESSION_SECRET);
  });

  test('does not start listening or print a stack trace', () => {
    expect(outcome.stderr).not.toMatch(/\n\s+at /);
    expect(outcome.stdout).toBe('');
  });
});
