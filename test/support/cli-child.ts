import { spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ENTRY = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/index.ts');
/** A child that neither exits nor is stopped by its test is killed after this long. */
export const CHILD_TIMEOUT_MS = 20_000;

export type Outcome = { code: number | null; stdout: string; stderr: string };

/**
 * `node src/index.ts <args>` as an operator runs it, in `cwd`, with exactly the environment given
 * (PATH aside); resolves once it exits. `onStdout` sees the output so far after each chunk.
 */
export function runCli(args: readonly string[], options: { cwd: string; env?: Record<string, string>; onStdout?: (stdout: string) => void }): Promise<Outcome> {
  return new Promise((done, reject) => {
    const child = spawn(process.execPath, [ENTRY, ...args], { cwd: options.cwd, env: { PATH: process.env.PATH ?? '', ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      options.onStdout?.(stdout);
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}
