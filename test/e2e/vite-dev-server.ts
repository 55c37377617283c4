import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const OUTPUT_TAIL_CHARS = 8_000;
const STOP_GRACE_MS = 5_000;
/** What Vite prints once it listens, e.g. `➜  Local:   http://127.0.0.1:43123/`. */
const LISTENING = /Local:\s+(http:\/\/127\.0\.0\.1:\d+)\//;

export type ViteDevServer = {
  /** http://127.0.0.1:<port>: what BFF_SPA_DEV_URL names. */
  url: string;
  /** The last few thousand characters Vite wrote, to explain a failure. */
  output(): string;
  /** SIGTERM (stdin closed too), then SIGKILL after a grace period. */
  stop(): Promise<void>;
};

export type ExampleCopy = {
  /** A scratch copy of the example's sources, safe to edit. */
  dir: string;
  remove(): void;
};

/**
 * Copies a Vite project's sources (not node_modules, not dist) to a scratch directory whose
 * node_modules links to the original's packages one by one, so that a test can edit files
 * to watch HMR without touching the working tree, and Vite's dependency cache
 * (node_modules/.vite) is the copy's own rather than a developer's running dev server's.
 */
export function copyViteProject(sourceDir: string): ExampleCopy {
  const modules = join(sourceDir, 'node_modules');
  if (!existsSync(join(modules, 'vite', 'bin', 'vite.js'))) {
    throw new Error(`${sourceDir} has no node_modules/vite: run npm ci --prefix ${sourceDir} first`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'bff-e2e-vite-'));
  try {
    for (const entry of readdirSync(sourceDir)) {
      if (entry === 'node_modules' || entry === 'dist') continue;
      cpSync(join(sourceDir, entry), join(dir, entry), { recursive: true });
    }
    mkdirSync(join(dir, 'node_modules'));
    for (const entry of readdirSync(modules)) {
      // Caches and build state stay behind; packages (and scopes) are linked.
      if (entry === '.vite' || entry === '.tmp' || entry === '.package-lock.json') continue;
      symlinkSync(join(modules, entry), join(dir, 'node_modules', entry));
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Starts `vite` (the dev server) in `root` as a child process on 127.0.0.1 and a port the
 * kernel picks, and resolves once Vite says where it listens.
 */
export async function startViteDevServer(options: { root: string; readyTimeoutMs?: number }): Promise<ViteDevServer> {
  const child = spawn(process.execPath, [join(options.root, 'node_modules', 'vite', 'bin', 'vite.js'), '--host', '127.0.0.1', '--port', '0', '--clearScreen', 'false'], {
    cwd: options.root,
    // Only PATH: no CI variable (Vite would stop watching stdin), no jest NODE_OPTIONS.
    env: { PATH: process.env.PATH ?? '', NO_COLOR: '1' },
    // stdin stays open: Vite's dev server exits when its stdin ends, which also ends it should this process die.
    stdio: ['pipe', 'pipe', 'pipe'],
  });

  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.stdin.end();
        child.kill('SIGTERM');
      }
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      try {
        await exited;
      } finally {
        clearTimeout(timer);
        process.removeListener('exit', killOnExit);
      }
    })();
    return stopping;
  };

  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Vite did not say it was listening within ${options.readyTimeoutMs ?? 30_000} ms:\n${output}`)), options.readyTimeoutMs ?? 30_000);
      const collect = (chunk: Buffer): void => {
        output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
        const listening = LISTENING.exec(output);
        if (listening?.[1] !== undefined) {
          clearTimeout(timer);
          resolve(listening[1]);
        }
      };
      child.stdout.on('data', collect);
      child.stderr.on('data', collect);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`Vite exited during start-up (${code ?? signal}):\n${output}`));
      });
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    return { url, output: () => output, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
