import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { TEST_SESSION_SECRET } from './gateway.ts';
import { TEST_CLIENT_ID, TEST_CLIENT_SECRET } from './idp.ts';
import { getFreePort } from './ports.ts';
import { testRedisUrl } from './redis.ts';

const ENTRY = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/index.ts');

/** One JSON log line of the child (the primary's or a worker's: workers' lines carry `worker`). */
export type LogLine = { msg?: string; level?: number; worker?: number; pid?: number; [field: string]: unknown };

export type GatewayChild = {
  process: ChildProcess;
  /** The public URL, on the main port every worker shares. */
  url: string;
  adminUrl: string;
  /** Everything written so far, stdout and stderr. */
  output(): string;
  /** The JSON log lines so far. */
  lines(): LogLine[];
  /** Resolves with the first log line (already written or still to come) that `match` accepts. */
  line(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
};

export type GatewayChildOptions = {
  issuer: string;
  routesFile: string;
  cwd: string;
  /** Reserved beforehand when the IdP must know the redirect URI. */
  port?: number;
  env?: Record<string, string>;
  /** Wait until /readyz answers 200 (default), or only until the process runs. */
  waitReady?: boolean;
  /** A process group of its own, to signal it and its workers together as a terminal's Ctrl-C does (`process.kill(-pid)`). */
  ownProcessGroup?: boolean;
};

const READY_DEADLINE_MS = 20_000;

/** `node src/index.ts` configured through its environment, as a container runs it, with the test Redis. */
export async function startGatewayChild(options: GatewayChildOptions): Promise<GatewayChild> {
  const port = options.port ?? (await getFreePort());
  const adminPort = await getFreePort();
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '',
    BFF_PUBLIC_URL: `http://127.0.0.1:${port}`,
    BFF_PORT: String(port),
    BFF_ADMIN_PORT: String(adminPort),
    BFF_ISSUER_URL: options.issuer,
    BFF_ALLOW_INSECURE_ISSUER: 'true',
    BFF_CLIENT_ID: TEST_CLIENT_ID,
    BFF_CLIENT_SECRET: TEST_CLIENT_SECRET,
    BFF_SESSION_SECRETS: TEST_SESSION_SECRET,
    BFF_REDIS_URL: testRedisUrl(),
    BFF_ROUTES_FILE: options.routesFile,
    BFF_LOG_LEVEL: 'info',
    BFF_RATE_LIMIT_LOGIN: '100000/1m',
    BFF_RATE_LIMIT_CALLBACK: '100000/1m',
    ...options.env,
  };
  const child = spawn(process.execPath, [ENTRY], { cwd: options.cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: options.ownProcessGroup === true });
  let output = '';
  const parsed: LogLine[] = [];
  let partial = '';
  const waiters = new Set<() => void>();
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
    partial += chunk;
    const complete = partial.split('\n');
    partial = complete.pop() ?? '';
    for (const text of complete) {
      try {
        parsed.push(JSON.parse(text) as LogLine);
      } catch {
        // Not a log line.
      }
    }
    for (const wake of waiters) wake();
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => child.once('exit', (code, signal) => done({ code, signal })));
  const adminUrl = `http://127.0.0.1:${adminPort}`;

  const line = (match: (line: LogLine) => boolean, timeoutMs = 15_000): Promise<LogLine> =>
    new Promise((done, reject) => {
      const check = (): boolean => {
        const found = parsed.find(match);
        if (!found) return false;
        cleanup();
        done(found);
        return true;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no such log line within ${timeoutMs} ms; output:\n${output}`));
      }, timeoutMs);
      const wake = (): void => void check();
      const cleanup = (): void => {
        clearTimeout(timer);
        waiters.delete(wake);
      };
      if (!check()) waiters.add(wake);
    });

  const running: GatewayChild = { process: child, url: `http://127.0.0.1:${port}`, adminUrl, output: () => output, lines: () => [...parsed], line, exited };
  if (options.waitReady === false) return running;
  const deadline = Date.now() + READY_DEADLINE_MS;
  for (;;) {
    const status = await fetch(`${adminUrl}/readyz`).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return running;
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`gateway child did not become ready:\n${output}`);
    }
    await delay(100);
  }
}

/** Kills a child that is still running (an afterEach safety net; tests stop their children themselves). */
export function killIfRunning(child: GatewayChild | undefined): void {
  if (child && child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL');
}
