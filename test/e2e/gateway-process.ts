import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const ENTRY = fileURLToPath(new URL('../../src/index.ts', import.meta.url));
const OUTPUT_TAIL_CHARS = 8_000;
const STOP_GRACE_MS = 10_000;

export type GatewayProcess = {
  adminUrl: string;
  /** The last few thousand characters the child wrote, to explain a failure. */
  output(): string;
  /** SIGTERM, then SIGKILL after a grace period; resolves with how the child ended. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
};

/**
 * Starts `src/index.ts` as its own process, configured only by the environment given, as
 * an operator would run it. Resolves once the admin port's /readyz answers 200.
 */
export async function startGatewayProcess(options: { env: Record<string, string>; adminPort: number; readyTimeoutMs?: number }): Promise<GatewayProcess> {
  // A scratch working directory: a developer's own .env must not configure the gateway under test.
  const cwd = mkdtempSync(join(tmpdir(), 'bff-e2e-gw-'));
  const child = spawn(process.execPath, [ENTRY], {
    cwd,
    // Nothing inherited but PATH: no stray BFF_* variable, no jest NODE_OPTIONS.
    env: { PATH: process.env.PATH ?? '', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });

  let output = '';
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  // Last resort if the test process dies without calling stop().
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  let stopping: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  const stop = (): Promise<{ code: number | null; signal: NodeJS.Signals | null }> => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
        process.removeListener('exit', killOnExit);
        rmSync(cwd, { recursive: true, force: true });
      }
    })();
    return stopping;
  };

  const adminUrl = `http://127.0.0.1:${options.adminPort}`;
  const deadline = Date.now() + (options.readyTimeoutMs ?? 20_000);
  let last: string;
  while (true) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new Error(`the gateway exited during start-up (${child.exitCode ?? child.signalCode}):\n${output}`);
    }
    try {
      const response = await fetch(`${adminUrl}/readyz`, { signal: AbortSignal.timeout(1_000) });
      await response.body?.cancel();
      if (response.status === 200) break;
      last = `HTTP ${response.status}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the gateway was not ready in time (last /readyz: ${last}):\n${output}`);
    }
    await delay(100);
  }

  return { adminUrl, output: () => output, stop };
}
