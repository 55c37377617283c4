/**
 * The processes under test run as children of the benchmark, so that the RSS
 * and CPU time read from /proc are theirs alone and not the load generator's.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import { basename, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

export interface ProcessSample {
  rssBytes: number;
  /** User plus system CPU time since the process started, all threads. */
  cpuSeconds: number;
}

export interface Child {
  readonly name: string;
  readonly pid: number;
  /** The last few KB of the child's stdout and stderr, to explain a failure. */
  output(): string;
  /** Resolves with the first stdout line, for children that announce their port. */
  firstLine(timeoutMs: number): Promise<string>;
  stop(): Promise<void>;
}

const OUTPUT_TAIL_CHARS = 8_000;
const STOP_GRACE_MS = 3_000;
/** Each child, and whether it leads a process group of its own. */
const live = new Map<ChildProcess, boolean>();

// A benchmark that crashes or is interrupted must not leave servers behind.
process.once('exit', () => {
  for (const [child, group] of live) {
    try {
      if (group && child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      else child.kill('SIGKILL');
    } catch {
      // Already gone.
    }
  }
});

let clockTicks: number | undefined;

/** USER_HZ, the unit of utime and stime in /proc/<pid>/stat (almost always 100, but not promised). */
export function clockTicksPerSecond(): number {
  if (clockTicks === undefined) {
    const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    if (!Number.isInteger(value) || value <= 0) throw new Error(`getconf CLK_TCK gave ${value}`);
    clockTicks = value;
  }
  return clockTicks;
}

/** One process; with `withReapedChildren`, plus the CPU time of its children that have exited. */
export function sampleProcess(pid: number, withReapedChildren = false): ProcessSample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!rss) throw new Error(`no VmRSS in /proc/${pid}/status`);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = statFields(stat);
  const ticks = Number(fields[11]) + Number(fields[12]) + (withReapedChildren ? Number(fields[13]) + Number(fields[14]) : 0);
  if (!Number.isFinite(ticks)) throw new Error(`unreadable /proc/${pid}/stat`);
  return { rssBytes: Number(rss[1]) * 1024, cpuSeconds: ticks / clockTicksPerSecond() };
}

/**
 * RSS and CPU time of `pid` and every process below it (apache2 runs a parent and
 * worker children), read from /proc in one pass. The root's cutime/cstime count too:
 * a child that exited and was reaped between two samples keeps its CPU time there.
 * RSS adds up pages shared between the processes more than once, as `ps` would; the
 * peers it is compared with are single processes, so the sum errs against apache2.
 */
export function sampleTree(pid: number): ProcessSample & { processes: number } {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const fields = statFields(readFileSync(`/proc/${entry}/stat`, 'utf8'));
      parents.set(Number(entry), Number(fields[1]));
    } catch {
      // Gone since readdir: it cannot be one of ours that matters.
    }
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) for (const [child, parent] of parents) if (parent === tree[i]) tree.push(child);
  let rssBytes = 0;
  let cpuSeconds = 0;
  for (const member of tree) {
    try {
      const sample = sampleProcess(member, member === pid);
      rssBytes += sample.rssBytes;
      cpuSeconds += sample.cpuSeconds;
    } catch (err) {
      if (member === pid) throw err;
    }
  }
  return { rssBytes, cpuSeconds, processes: tree.length };
}

/** The fields of /proc/<pid>/stat after the command name, which may hold spaces or parentheses. */
function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/**
 * Starts `node <script>` with exactly `env` (plus PATH), never the caller's
 * BFF_* variables. Under setpriv the kernel kills the child if this process
 * dies without cleaning up (even by SIGKILL); setpriv execs node, so the pid
 * is node's own.
 */
export function spawnNode(name: string, script: string, env: Record<string, string>, cwd: string): Child {
  return spawnCommand(name, process.execPath, [script], env, cwd);
}

/**
 * Any program, started as spawnNode starts node. With `processGroup` it leads a process
 * group of its own, and is stopped (or killed when this process exits) with its whole
 * group: for servers that fork workers, which the parent-death signal does not reach.
 */
export function spawnCommand(name: string, command: string, args: readonly string[], env: Record<string, string>, cwd: string, options: { processGroup?: boolean } = {}): Child {
  const guarded = existsSync('/usr/bin/setpriv');
  const processGroup = options.processGroup === true;
  const spawnOptions = { cwd, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'], detached: processGroup };
  const child = guarded ? spawn('/usr/bin/setpriv', ['--pdeathsig', 'KILL', '--', command, ...args], spawnOptions) : spawn(command, args, spawnOptions);
  if (child.pid === undefined) throw new Error(`${name}: could not start`);
  const pid = child.pid;
  live.set(child, processGroup);
  const signal = (sig: NodeJS.Signals): void => {
    try {
      if (processGroup) process.kill(-pid, sig);
      else child.kill(sig);
    } catch {
      // Already gone.
    }
  };

  let output = '';
  let stdoutBuffer = '';
  const lineWaiters: Array<(line: string) => void> = [];
  const lines: string[] = [];
  child.stdout.on('data', (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    output = (output + text).slice(-OUTPUT_TAIL_CHARS);
    stdoutBuffer += text;
    let newline = stdoutBuffer.indexOf('\n');
    while (newline >= 0) {
      const line = stdoutBuffer.slice(0, newline);
      stdoutBuffer = stdoutBuffer.slice(newline + 1);
      const waiter = lineWaiters.shift();
      if (waiter) waiter(line);
      else lines.push(line);
      newline = stdoutBuffer.indexOf('\n');
    }
  });
  child.stderr.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
  });
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      live.delete(child);
      resolve();
    }),
  );

  return {
    name,
    pid,
    output: () => output,
    firstLine(timeoutMs) {
      const ready = lines.shift();
      if (ready !== undefined) return Promise.resolve(ready);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name}: no output within ${timeoutMs} ms:\n${output}`)), timeoutMs);
        void exited.then(() => {
          clearTimeout(timer);
          reject(new Error(`${name} exited (code ${child.exitCode ?? child.signalCode}):\n${output}`));
        });
        lineWaiters.push((line) => {
          clearTimeout(timer);
          resolve(line);
        });
      });
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) {
        // The leader is gone, but workers of its group may not be.
        if (processGroup) signal('SIGKILL');
        return;
      }
      signal('SIGTERM');
      const timer = setTimeout(() => signal('SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
      if (processGroup) signal('SIGKILL');
    },
  };
}

/**
 * A wrapper script that execs `command` under setpriv (same pid), for children
 * started by code that takes a binary path, such as the tests' startRedis.
 * Undefined where setpriv is missing: the command is then used as it is.
 */
export function guardedCommand(command: string, dir: string): string | undefined {
  if (!existsSync('/usr/bin/setpriv')) return undefined;
  const path = join(dir, command);
  writeFileSync(path, `#!/bin/sh\nexec /usr/bin/setpriv --pdeathsig KILL -- ${command} "$@"\n`, { mode: 0o755 });
  return path;
}

/** Polls `url` until it answers 200; fails early if the child exits. */
export function waitForOk(child: Child, url: string, timeoutMs: number): Promise<void> {
  return waitForStatus(child, url, 200, timeoutMs);
}

/** Polls `url` until it answers `status` (e.g. the 401 of a protected path); fails early if the child exits. */
export async function waitForStatus(child: Child, url: string, status: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (!isAlive(child.pid)) throw new Error(`${child.name} exited before ${url} answered:\n${child.output()}`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (response.status === status) return;
      last = `HTTP ${response.status}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await delay(100);
  }
  throw new Error(`${child.name}: ${url} did not answer ${status} within ${timeoutMs} ms (${last}):\n${child.output()}`);
}

function isAlive(pid: number): boolean {
  try {
    // A zombie still has a stat file until Node reaps it.
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/**
 * The script as plain JavaScript, as its users would run it: Node's own type stripping applied
 * once, written beside the benchmark (bench/.build/, so that its packages resolve from the
 * repository's node_modules). Run as TypeScript, every process would also carry the type
 * stripper (about 16 MB of RSS); only a script without relative imports can be turned so.
 */
export function plainJavaScript(tsFile: string, repo: string): string {
  const dir = join(repo, 'bench/.build');
  mkdirSync(dir, { recursive: true });
  const out = join(dir, `${basename(tsFile, '.ts')}.mjs`);
  writeFileSync(out, stripTypeScriptTypes(readFileSync(tsFile, 'utf8'), { mode: 'strip' }));
  return out;
}

/** `npm run build`: the benchmark runs the gateway as the package ships it (dist/, through bin/bff-gateway.js). */
export function buildGateway(repo: string): void {
  execFileSync(process.execPath, [join(repo, 'node_modules/typescript/bin/tsc'), '-p', join(repo, 'tsconfig.build.json')], { cwd: repo, stdio: 'inherit' });
}
