import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { getFreePort } from './ports.ts';

export type RedisServer = {
  url: string;
  port: number;
  stop(): Promise<void>;
};

export type StartRedisOptions = {
  /** Restart on a known port, e.g. after stopping it to simulate an outage. */
  port?: number;
  /**
   * How to choose a port when `port` is not given (default: any free port). Called again
   * when redis-server finds the chosen port, or a cluster node its bus port, taken by then.
   */
  pickPort?: () => Promise<number>;
  /** Default `redis-server` from PATH. */
  binary?: string;
  /** A config file read first (Sentinel needs one it can rewrite). */
  configFile?: string;
  /**
   * More server arguments, e.g. `['--cluster-enabled', 'yes']` or `['--sentinel']`; a function
   * of the port when they name per-node files (a failed start leaves its cluster config behind).
   */
  args?: string[] | ((port: number) => string[]);
};

const READY_DEADLINE_MS = 10_000;
/** A picked port is only probed, not held: another process can bind it before redis-server does. */
const PICK_ATTEMPTS = 5;
const ADDRESS_IN_USE = /Address already in use/;
const KILL_GRACE_MS = 2_000;
const OUTPUT_TAIL_CHARS = 4_000;
const MISSING_BINARY_MESSAGE = 'redis-server not found: install it with `apt-get install -y redis-server` (the integration tests start their own redis-server on a free port)';

/**
 * Starts a throw-away redis-server as a foreground child process on 127.0.0.1: no
 * persistence, never daemonized (a daemon outlives the test run), never on 6379 (a
 * developer's own Redis must not be touched).
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  if (options.port !== undefined) return startRedisOn(options.port, options);
  const pickPort = options.pickPort ?? getFreePort;
  for (let attempt = 1; ; attempt++) {
    try {
      return await startRedisOn(await pickPort(), options);
    } catch (err) {
      if (attempt >= PICK_ATTEMPTS || !(err instanceof Error) || !ADDRESS_IN_USE.test(err.message)) throw err;
    }
  }
}

async function startRedisOn(port: number, options: StartRedisOptions): Promise<RedisServer> {
  if (port === 6379) throw new Error('startRedis: refusing port 6379, which may belong to a real Redis');

  const child = spawn(
    options.binary ?? 'redis-server',
    [
      ...(options.configFile ? [options.configFile] : []),
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
      '--dir',
      tmpdir(),
      ...(typeof options.args === 'function' ? options.args(port) : (options.args ?? [])),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );

  // Kept only to explain a failed start; the pipes must be drained either way or the child blocks.
  let output = '';
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);

  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const spawnFailed = new Promise<never>((_, reject) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'ENOENT' ? new Error(MISSING_BINARY_MESSAGE) : err);
    });
  });
  const exitedEarly = exited.then(() => {
    throw new Error(`redis-server on port ${port} exited before accepting connections (exit code ${child.exitCode ?? 'none'}):\n${output}`);
  });
  spawnFailed.catch(() => {});
  exitedEarly.catch(() => {});

  // Last resort for a test process that exits without calling stop(): never leave a server behind.
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  const polling = new AbortController();
  try {
    await Promise.race([waitForPong(port, READY_DEADLINE_MS, polling.signal), spawnFailed, exitedEarly]);
  } catch (err) {
    polling.abort();
    await stopChild(child, exited);
    process.removeListener('exit', killOnExit);
    throw err;
  }

  let stopping: Promise<void> | undefined;
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop() {
      stopping ??= stopChild(child, exited).finally(() => process.removeListener('exit', killOnExit));
      return stopping;
    },
  };
}

/**
 * The Redis started by the jest global setup, shared by every test file. A suite that
 * counts keys asks for a logical database of its own (`db`), since other suites write
 * to the same server at the same time.
 */
export function testRedisUrl(db = 0): string {
  const url = process.env.BFF_TEST_REDIS_URL;
  if (!url) throw new Error('BFF_TEST_REDIS_URL is not set: run the tests through jest so that test/support/global-setup.ts starts Redis');
  return db === 0 ? url : `${url}/${db}`;
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

/** Polls until Redis answers, the deadline passes, or `signal` says the start failed otherwise. */
async function waitForPong(port: number, deadlineMs: number, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  let lastError: unknown;
  while (Date.now() < deadline && !signal.aborted) {
    try {
      if (await ping(port, Math.max(deadline - Date.now(), 1))) return;
      lastError = new Error('unexpected reply to PING');
    } catch (err) {
      lastError = err;
    }
    await delay(50);
  }
  throw new Error(`redis-server on port ${port} did not answer PING within ${deadlineMs} ms: ${String(lastError)}`);
}

/** One raw RESP round trip, so that readiness does not depend on the Redis client under test. */
function ping(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error('PING timed out')));
    socket.once('error', reject);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('utf8');
      if (!reply.includes('\r\n')) return;
      socket.destroy();
      // A server still loading answers -LOADING: not ready yet, ask again.
      resolve(reply.startsWith('+PONG'));
    });
    socket.once('close', () => resolve(false));
  });
}
