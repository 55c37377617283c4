/**
 * The processes under test run as children of the benchmark, so that the RSS
 * and CPU time read from /proc are theirs alone and not the load generator's.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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
const live = new Set<ChildProcess>();

// A benchmark that crashes or is interrupted must not leave servers behind.
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
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

export function sampleProcess(pid: number): ProcessSample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!rss) throw new Error(`no VmRSS in /proc/${pid}/status`);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces or parentheses: count fields from after its closing one.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  if (!Number.isFinite(ticks)) throw new Error(`unreadable /proc/${pid}/stat`);
  return { rssBytes: Number(rss[1]) * 1024, cpuSeconds: ticks / clockTicksPerSecond() };
}

/**
 * Starts `node <script>` with exactly `env` (plus PATH), never the caller's
 * BFF_* variables. Under setpriv the kernel kills the child if this process
 * dies without cleaning up (even by SIGKILL); setpriv execs node, so the pid
 * is node's own.
 */
export function spawnNode(name: string, script: string, env: Record<string, string>, cwd: string): Child {
  const nodeArgs = [script];
  const guarded = existsSync('/usr/bin/setpriv');
  const child = guarded
    ? spawn('/usr/bin/setpriv', ['--pdeathsig', 'KILL', '--', process.execPath, ...nodeArgs], { cwd, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, nodeArgs, { cwd, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`${name}: could not start`);
  live.add(child);

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
    pid: child.pid,
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
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
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
export async function waitForOk(child: Child, url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (!isAlive(child.pid)) throw new Error(`${child.name} exited before ${url} answered:\n${child.output()}`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (response.status === 200) return;
      last = `HTTP ${response.status}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await delay(100);
  }
  throw new Error(`${child.name}: ${url} did not answer 200 within ${timeoutMs} ms (${last}):\n${child.output()}`);
}

function isAlive(pid: number): boolean {
  try {
    // A zombie still has a stat file until Node reaps it.
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
