/**
 * `npm run bench`: the gateway's proxy hot path measured side by side with the
 * upstream alone and a bare Node reverse proxy, printed as a table and written
 * to bench/results/latest.json. Run by hand, never in `npm test`: the numbers
 * belong to the machine (and to whatever else it is doing).
 *
 * Everything runs here, on loopback. The processes under test (the gateway,
 * the bare proxy) are child processes, so that their RSS and CPU time are
 * their own; the IdP, the upstream, redis-server and autocannon belong to this
 * process. Settings (environment, defaults in brackets): BENCH_SECONDS [10]
 * per run, BENCH_RUNS [3] per scenario (medians reported), BENCH_CONNECTIONS
 * [50], BENCH_WARMUP_SECONDS [2], BENCH_STORM_SESSIONS [20],
 * BENCH_LEAK_REQUESTS [1000000] (RSS compared with the first tenth),
 * BENCH_SIZE_SESSIONS [1000], BENCH_MAX_MINUTES [20] (then everything stops),
 * BENCH_STRICT=1 (exit 1 when a target is missed). Scenario 6 is scenario 4 under BFF_DPOP=true.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type autocannon from 'autocannon';
import { loginThroughGateway } from '../test/support/browser-flow.ts';
import { startIdp, TEST_CLIENT_ID, TEST_CLIENT_SECRET, type TestIdp } from '../test/support/idp.ts';
import { getFreePort } from '../test/support/ports.ts';
import { startRedis } from '../test/support/redis.ts';
import { guardedCommand, sampleProcess, spawnNode, waitForOk, type Child } from './children.ts';
import { startLeanUpstream } from './lean-upstream.ts';
import { median, runLoad, type LoadOptions, type LoadResult } from './load.ts';
import { fixed, formatTable, megabytes, signed, thousands } from './report.ts';
import { measureSessionSize, type SessionSizeResult } from './session-size.ts';

const settings = {
  seconds: setting('BENCH_SECONDS', 10),
  runs: setting('BENCH_RUNS', 3),
  connections: setting('BENCH_CONNECTIONS', 50),
  warmupSeconds: setting('BENCH_WARMUP_SECONDS', 2),
  stormSessions: setting('BENCH_STORM_SESSIONS', 20),
  stormTokenTtlSec: 5,
  leakRequests: setting('BENCH_LEAK_REQUESTS', 1_000_000),
  sizeSessions: setting('BENCH_SIZE_SESSIONS', 1000),
  maxMinutes: setting('BENCH_MAX_MINUTES', 20),
};
const LEAK_CHECKPOINT = Math.round(settings.leakRequests / 10);
/**
 * The leak check gets what is left of the ten minutes the whole benchmark may take (minus a margin for
 * the session-size measurement after it), at least a minute: however slow the gateway, it must not hold
 * the benchmark. When the time runs out first, the report says so.
 */
const LEAK_ENDS_AFTER_MINUTES = 9.25;
const LEAK_MIN_SECONDS = 60;
const PATH = '/api/items/4711';
const REPO = fileURLToPath(new URL('..', import.meta.url));
const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
const SESSION_SECRET = randomBytes(48).toString('base64url');

function setting(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got "${text}"`);
  return value;
}

interface RunResult extends LoadResult {
  /** CPU seconds the process under test spent per 10,000 responses in this run. */
  cpuPer10k?: number;
  /** Refresh-token grants the IdP answered during the run. */
  refreshes?: number;
}

interface ScenarioResult {
  id: number;
  name: string;
  runs: RunResult[];
  rps: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  cpuPer10k?: number;
  rssBytes?: number;
  /** Over the warm-up and every run, not a median: the target is zero. */
  non2xx: number;
  errors: number;
  refreshes?: number;
}

interface Target {
  name: string;
  met: boolean;
  detail: string;
}

const cleanups: Array<() => Promise<void>> = [];
async function cleanUp(): Promise<void> {
  while (cleanups.length > 0) {
    const cleanup = cleanups.pop() as () => Promise<void>;
    await Promise.race([cleanup().catch((err: unknown) => console.error('cleanup failed:', err)), delay(5_000)]);
  }
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: stopping everything`);
    void cleanUp().finally(() => process.exit(130));
  });
}
const watchdog = setTimeout(() => {
  console.error(`\nbench: still running after ${settings.maxMinutes} minutes; stopping everything`);
  void cleanUp().finally(() => process.exit(1));
}, settings.maxMinutes * 60_000);

const startedAt = new Date();
const machine = describeMachine();
console.log(`bff-gateway benchmark — ${startedAt.toISOString()}`);
console.log(`machine: ${machine.cores} cores, ${machine.cpuModel}, ${machine.memoryGb} GB RAM, Linux ${machine.kernel}; node ${process.version}; load average at start ${machine.loadAverageAtStart}`);
console.log(
  `settings: ${settings.connections} connections, keep-alive, GET ${PATH}; ${settings.runs} × ${settings.seconds} s per scenario after ${settings.warmupSeconds} s warm-up; ` +
    `refresh storm: ${settings.stormSessions} sessions, ${settings.stormTokenTtlSec} s access tokens; leak check: ${thousands(LEAK_CHECKPOINT)} vs ${thousands(settings.leakRequests)} requests\n`,
);

let exitCode = 0;
try {
  const results = await benchmark();
  const finishedAt = new Date();
  const elapsedSec = (finishedAt.getTime() - startedAt.getTime()) / 1000;
  const output = { startedAt: startedAt.toISOString(), finishedAt: finishedAt.toISOString(), elapsedSec, machine: { ...machine, loadAverageAtEnd: loadAverage() }, settings, ...results };
  mkdirSync(RESULTS_DIR, { recursive: true });
  const json = `${JSON.stringify(output, null, 2)}\n`;
  writeFileSync(join(RESULTS_DIR, 'latest.json'), json);
  writeFileSync(join(RESULTS_DIR, `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`), json);
  printReport(results.scenarios, results.sessionSize, results.leak, results.targets);
  const wholeSec = Math.round(elapsedSec);
  console.log(`\nfinished in ${Math.floor(wholeSec / 60)} min ${wholeSec % 60} s; load average at end ${loadAverage()}; written to bench/results/latest.json`);
  if (process.env.BENCH_STRICT === '1' && results.targets.some((t) => !t.met)) exitCode = 1;
} catch (err) {
  console.error('\nbench failed:', err);
  exitCode = 1;
} finally {
  clearTimeout(watchdog);
  await cleanUp();
}
// Keep-alive sockets of fetch and autocannon would keep the process up a little longer; nothing is left to wait for.
process.exit(exitCode);

async function benchmark() {
  const upstream = await startLeanUpstream();
  cleanups.push(() => upstream.close());
  const workDir = mkdtempSync(join(os.tmpdir(), 'bff-bench-'));
  cleanups.push(async () => rmSync(workDir, { recursive: true, force: true }));
  const redisBinary = guardedCommand('redis-server', workDir);
  const redisOptions = redisBinary ? { binary: redisBinary } : {};
  const redis = await startRedis(redisOptions);
  cleanups.push(() => redis.stop());

  const ports = { memory: await gatewayPorts(), redis: await gatewayPorts(), storm: await gatewayPorts(), leak: await gatewayPorts(), dpop: await gatewayPorts() };
  // DPoP is on in oidc-provider 9 by default: the same IdP binds the DPoP scenario's tokens.
  const idp = await startIdp({
    redirectUris: [ports.memory, ports.redis, ports.leak, ports.dpop].map((p) => `${p.url}/auth/callback`),
    postLogoutRedirectUris: [ports.memory, ports.redis, ports.leak, ports.dpop].map((p) => `${p.url}/`),
    accessTokenTtl: 3600,
  });
  cleanups.push(() => idp.close());
  const stormIdp = await startIdp({
    redirectUris: [`${ports.storm.url}/auth/callback`],
    postLogoutRedirectUris: [`${ports.storm.url}/`],
    accessTokenTtl: settings.stormTokenTtlSec,
  });
  cleanups.push(() => stormIdp.close());

  const scenarios: ScenarioResult[] = [];
  scenarios.push(await measureScenario(1, 'upstream direct (ceiling)', { url: `${upstream.url}${PATH}` }));

  {
    const bare = spawnNode('bare proxy', join(REPO, 'bench/bare-proxy.ts'), { NODE_ENV: 'production', BENCH_TARGET: upstream.url }, REPO);
    cleanups.push(() => bare.stop());
    const { port } = JSON.parse(await bare.firstLine(15_000)) as { port: number };
    scenarios.push(await measureScenario(2, 'bare proxy (http-proxy-middleware, keep-alive)', { url: `http://127.0.0.1:${port}${PATH}` }, bare));
    await bare.stop();
  }

  for (const [id, name, store] of [
    [3, 'gateway, valid session, memory store', 'memory'],
    [4, 'gateway, valid session, Redis store', 'redis'],
  ] as const) {
    const gw = await startGatewayChild(`gateway (${store})`, ports[store], idp, upstream.url, store === 'redis' ? redis.url : undefined);
    const { cookieHeader } = await loginThroughGateway(ports[store].url);
    scenarios.push(await measureScenario(id, name, { url: `${ports[store].url}${PATH}`, headers: { cookie: cookieHeader } }, gw.child));
    await gw.stop();
  }

  {
    const gw = await startGatewayChild('gateway (refresh storm)', ports.storm, stormIdp, upstream.url, redis.url);
    const cookies: string[] = [];
    for (let i = 0; i < settings.stormSessions; i++) {
      stormIdp.nextAccount = `storm-user-${i}`;
      cookies.push((await loginThroughGateway(ports.storm.url)).cookieHeader);
    }
    let next = 0;
    const rotate = (request: autocannon.Request): autocannon.Request => {
      next = (next + 1) % cookies.length;
      return { ...request, headers: { ...request.headers, cookie: cookies[next] as string } };
    };
    scenarios.push(
      await measureScenario(
        5,
        `gateway, refresh storm (${settings.stormSessions} sessions, ${settings.stormTokenTtlSec} s tokens, Redis)`,
        { url: `${ports.storm.url}${PATH}`, setupRequest: rotate },
        gw.child,
        () => stormIdp.counts.refreshToken,
      ),
    );
    await gw.stop();
  }

  {
    // Scenario 4 with sender-constrained tokens: one ES256 proof signed per request (the lean upstream does not verify it).
    const gw = await startGatewayChild('gateway (DPoP)', ports.dpop, idp, upstream.url, redis.url, { BFF_DPOP: 'true' });
    const { cookieHeader } = await loginThroughGateway(ports.dpop.url);
    scenarios.push(await measureScenario(6, 'gateway, valid session, Redis store, BFF_DPOP=true', { url: `${ports.dpop.url}${PATH}`, headers: { cookie: cookieHeader } }, gw.child));
    await gw.stop();
  }

  const leak = await leakCheck(ports.leak, idp, upstream.url, redis.url);

  console.log(`bytes per session: writing ${thousands(settings.sizeSessions)} sessions through the gateway's session store…`);
  const sizeRedis = await startRedis(redisOptions);
  cleanups.push(() => sizeRedis.stop());
  const sessionSize = await measureSessionSize(sizeRedis.url, settings.sizeSessions);
  await sizeRedis.stop();

  return { scenarios, sessionSize, leak, targets: evaluate(scenarios, leak) };
}

interface GatewayPorts {
  url: string;
  port: number;
  adminPort: number;
}

async function gatewayPorts(): Promise<GatewayPorts> {
  const port = await getFreePort();
  return { url: `http://127.0.0.1:${port}`, port, adminPort: await getFreePort() };
}

/** `node src/index.ts`, configured through the environment as an operator would, ready when /readyz says so. */
async function startGatewayChild(name: string, ports: GatewayPorts, idp: TestIdp, upstreamUrl: string, redisUrl: string | undefined, extraEnv: Record<string, string> = {}) {
  const dir = mkdtempSync(join(os.tmpdir(), 'bff-bench-'));
  const routesFile = join(dir, 'routes.json');
  writeFileSync(routesFile, JSON.stringify({ routes: [{ prefix: '/api/items', target: upstreamUrl, token: 'user' }] }));
  const child = spawnNode(
    name,
    join(REPO, 'src/index.ts'),
    {
      NODE_ENV: 'production',
      BFF_PUBLIC_URL: ports.url,
      BFF_PORT: String(ports.port),
      BFF_ADMIN_PORT: String(ports.adminPort),
      BFF_ISSUER_URL: idp.issuer,
      BFF_ALLOW_INSECURE_ISSUER: 'true',
      BFF_CLIENT_ID: TEST_CLIENT_ID,
      BFF_CLIENT_SECRET: TEST_CLIENT_SECRET,
      BFF_SESSION_SECRETS: SESSION_SECRET,
      BFF_ROUTES_FILE: routesFile,
      // Warnings and errors only: an access log line per request would measure the logger.
      BFF_LOG_LEVEL: 'warn',
      BFF_SHUTDOWN_TIMEOUT: '2',
      // The refresh storm signs BENCH_STORM_SESSIONS users in from 127.0.0.1 within seconds, beyond the per-address login limit.
      BFF_RATE_LIMIT_LOGIN: 'off',
      BFF_RATE_LIMIT_CALLBACK: 'off',
      ...(redisUrl ? { BFF_REDIS_URL: redisUrl } : {}),
      ...extraEnv,
    },
    // Its own working directory, so that no .env of the developer's is picked up.
    dir,
  );
  const stop = async (): Promise<void> => {
    await child.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  cleanups.push(stop);
  await waitForOk(child, `http://127.0.0.1:${ports.adminPort}/readyz`, 30_000);
  return { child, stop };
}

interface LoadTarget {
  url: string;
  headers?: Record<string, string>;
  setupRequest?: LoadOptions['setupRequest'];
}

async function measureScenario(id: number, name: string, target: LoadTarget, child?: Child, refreshCount?: () => number): Promise<ScenarioResult> {
  const load = (durationSec: number): Promise<LoadResult> =>
    runLoad({
      url: target.url,
      connections: settings.connections,
      durationSec,
      headers: { accept: 'application/json', 'x-csrf': '1', ...target.headers },
      ...(target.setupRequest ? { setupRequest: target.setupRequest } : {}),
      maxSeconds: durationSec + 30,
    });
  const warmup = await load(settings.warmupSeconds);
  let non2xx = warmup.non2xx;
  let errors = warmup.errors;
  const runs: RunResult[] = [];
  for (let run = 1; run <= settings.runs; run++) {
    await delay(500);
    const before = child ? sampleProcess(child.pid) : undefined;
    const refreshesBefore = refreshCount?.();
    const result = await load(settings.seconds);
    const after = child ? sampleProcess(child.pid) : undefined;
    const runResult: RunResult = {
      ...result,
      ...(before && after ? { cpuPer10k: ((after.cpuSeconds - before.cpuSeconds) / result.responses) * 10_000 } : {}),
      ...(refreshesBefore !== undefined && refreshCount ? { refreshes: refreshCount() - refreshesBefore } : {}),
    };
    runs.push(runResult);
    non2xx += result.non2xx;
    errors += result.errors;
    console.log(
      `  #${id} run ${run}/${settings.runs}: ${thousands(result.rps)} req/s, p50 ${fixed(result.p50Ms, 2)} ms, p99 ${fixed(result.p99Ms, 2)} ms, ` +
        `non-2xx ${result.non2xx}, errors ${result.errors}${runResult.refreshes !== undefined ? `, refreshes ${runResult.refreshes}` : ''}`,
    );
  }
  const rssBytes = child ? sampleProcess(child.pid).rssBytes : undefined;
  const of = (pick: (r: RunResult) => number | undefined): number | undefined => {
    const values = runs.map(pick).filter((v): v is number => v !== undefined);
    return values.length > 0 ? median(values) : undefined;
  };
  const refreshes = of((r) => r.refreshes);
  const cpuPer10k = of((r) => r.cpuPer10k);
  console.log(`#${id} ${name}: ${thousands(of((r) => r.rps))} req/s (median of ${runs.length})`);
  return {
    id,
    name,
    runs,
    rps: of((r) => r.rps) as number,
    p50Ms: of((r) => r.p50Ms) as number,
    p99Ms: of((r) => r.p99Ms) as number,
    p999Ms: of((r) => r.p999Ms) as number,
    ...(cpuPer10k !== undefined ? { cpuPer10k } : {}),
    ...(rssBytes !== undefined ? { rssBytes } : {}),
    non2xx,
    errors,
    ...(refreshes !== undefined ? { refreshes } : {}),
  };
}

interface LeakResult {
  checkpointRequests: number;
  totalRequests: number;
  rssAtCheckpointBytes: number;
  rssAtEndBytes: number;
  growthPercent: number;
  non2xx: number;
  errors: number;
  /** False when the time cap stopped the run before it reached the planned request count. */
  complete: boolean;
}

/** A fresh gateway (Redis store, one session): RSS after the first tenth of the requests and after all of them. */
async function leakCheck(ports: GatewayPorts, idp: TestIdp, upstreamUrl: string, redisUrl: string): Promise<LeakResult> {
  console.log(`leak check: ${thousands(settings.leakRequests)} requests through a fresh gateway (Redis store)…`);
  const gw = await startGatewayChild('gateway (leak check)', ports, idp, upstreamUrl, redisUrl);
  const { cookieHeader } = await loginThroughGateway(ports.url);
  const deadline = Math.max(startedAt.getTime() + LEAK_ENDS_AFTER_MINUTES * 60_000, Date.now() + LEAK_MIN_SECONDS * 1000);
  const load = (amount: number): Promise<LoadResult> =>
    runLoad({
      url: `${ports.url}${PATH}`,
      connections: settings.connections,
      amount,
      headers: { accept: 'application/json', 'x-csrf': '1', cookie: cookieHeader },
      maxSeconds: Math.max(1, (deadline - Date.now()) / 1000),
    });
  const first = await load(LEAK_CHECKPOINT);
  // A moment for in-flight work (session touches, GC) to finish before reading RSS, the same both times.
  await delay(1000);
  const atCheckpoint = sampleProcess(gw.child.pid).rssBytes;
  console.log(`  after ${thousands(first.responses)} requests: RSS ${megabytes(atCheckpoint)} MB (${thousands(first.rps)} req/s)`);
  const rest = first.capped ? undefined : await load(settings.leakRequests - LEAK_CHECKPOINT);
  await delay(1000);
  const atEnd = sampleProcess(gw.child.pid).rssBytes;
  const total = first.responses + (rest?.responses ?? 0);
  console.log(`  after ${thousands(total)} requests: RSS ${megabytes(atEnd)} MB (${thousands(rest?.rps)} req/s)`);
  await gw.stop();
  return {
    checkpointRequests: first.responses,
    totalRequests: total,
    rssAtCheckpointBytes: atCheckpoint,
    rssAtEndBytes: atEnd,
    growthPercent: ((atEnd - atCheckpoint) / atCheckpoint) * 100,
    non2xx: first.non2xx + (rest?.non2xx ?? 0),
    errors: first.errors + (rest?.errors ?? 0),
    complete: !first.capped && rest !== undefined && !rest.capped,
  };
}

function evaluate(scenarios: readonly ScenarioResult[], leak: LeakResult): Target[] {
  const bare = scenarios.find((s) => s.id === 2) as ScenarioResult;
  const redis = scenarios.find((s) => s.id === 4) as ScenarioResult;
  const dpop = scenarios.find((s) => s.id === 6) as ScenarioResult;
  const failing = scenarios.filter((s) => s.non2xx + s.errors > 0);
  const ratio = redis.rps / bare.rps;
  const dpopRatio = dpop.rps / redis.rps;
  return [
    {
      name: 'scenario 4 req/s ≥ 90 % of scenario 2',
      met: ratio >= 0.9,
      detail: `${(ratio * 100).toFixed(1)} % (${thousands(redis.rps)} vs ${thousands(bare.rps)} req/s)`,
    },
    {
      name: 'scenario 4 p99 within 1 ms of scenario 2',
      met: redis.p99Ms - bare.p99Ms <= 1,
      detail: `${fixed(redis.p99Ms, 2)} ms vs ${fixed(bare.p99Ms, 2)} ms (${signed(redis.p99Ms - bare.p99Ms, 2)} ms)`,
    },
    {
      name: 'scenario 6 (DPoP) req/s ≥ 70 % of scenario 4 (Bearer)',
      met: dpopRatio >= 0.7,
      detail: `${(dpopRatio * 100).toFixed(1)} % (${thousands(dpop.rps)} vs ${thousands(redis.rps)} req/s); p99 ${signed(dpop.p99Ms - redis.p99Ms, 2)} ms; CPU ${signed((dpop.cpuPer10k ?? Number.NaN) - (redis.cpuPer10k ?? Number.NaN), 2)} s/10k`,
    },
    {
      name: 'zero non-2xx responses in every scenario',
      met: failing.length === 0 && leak.non2xx + leak.errors === 0,
      detail:
        failing.length === 0 && leak.non2xx + leak.errors === 0
          ? 'none (warm-ups and leak check included)'
          : [...failing.map((s) => `#${s.id}: ${s.non2xx} non-2xx, ${s.errors} errors`), ...(leak.non2xx + leak.errors > 0 ? [`leak check: ${leak.non2xx} non-2xx, ${leak.errors} errors`] : [])].join(
              '; ',
            ),
    },
    {
      name: `RSS growth from ${thousands(LEAK_CHECKPOINT)} to ${thousands(settings.leakRequests)} requests < 10 %`,
      met: leak.complete && leak.growthPercent < 10,
      detail: `${signed(leak.growthPercent, 1)} % (${megabytes(leak.rssAtCheckpointBytes)} → ${megabytes(leak.rssAtEndBytes)} MB)${leak.complete ? '' : `; INCOMPLETE: stopped after ${thousands(leak.totalRequests)} requests`}`,
    },
  ];
}

function printReport(scenarios: readonly ScenarioResult[], size: SessionSizeResult, leak: LeakResult, targets: readonly Target[]): void {
  const bareRps = scenarios.find((s) => s.id === 2)?.rps ?? Number.NaN;
  console.log(`\n${settings.connections} connections, ${settings.runs} × ${settings.seconds} s per scenario, medians; latency in ms; RSS at the end of the scenario; CPU = process under test`);
  console.log(
    formatTable(scenarios, [
      { title: '#', value: (s) => String(s.id) },
      { title: 'scenario', value: (s) => s.name, align: 'left' },
      { title: 'req/s', value: (s) => thousands(s.rps) },
      { title: 'p50', value: (s) => fixed(s.p50Ms, 2) },
      { title: 'p99', value: (s) => fixed(s.p99Ms, 2) },
      { title: 'p99.9', value: (s) => fixed(s.p999Ms, 2) },
      { title: 'vs #2', value: (s) => `${((s.rps / bareRps) * 100).toFixed(0)} %` },
      { title: 'RSS MB', value: (s) => megabytes(s.rssBytes) },
      { title: 'CPU s/10k', value: (s) => fixed(s.cpuPer10k, 2) },
      { title: 'non-2xx', value: (s) => String(s.non2xx) },
      { title: 'errors', value: (s) => String(s.errors) },
    ]),
  );
  const storm = scenarios.find((s) => s.id === 5);
  console.log(`#1: the upstream lives in the benchmark process (no RSS/CPU of its own). #5: ${thousands(storm?.refreshes)} token refreshes per run (median).`);
  const bearer = scenarios.find((s) => s.id === 4);
  const dpop = scenarios.find((s) => s.id === 6);
  if (bearer && dpop) {
    console.log(
      `#6 vs #4, the cost of DPoP (an ES256 proof per upstream request): ${signed(((dpop.rps - bearer.rps) / bearer.rps) * 100, 1)} % req/s, ` +
        `${signed(dpop.p99Ms - bearer.p99Ms, 2)} ms p99, ${signed((dpop.cpuPer10k ?? Number.NaN) - (bearer.cpuPer10k ?? Number.NaN), 2)} CPU s/10k`,
    );
  }
  console.log(
    `\nbytes per session in Redis (median of ${thousands(size.sessions)}; tokens of ${thousands(size.accessTokenChars)}/${thousands(size.idTokenChars)}/${thousands(size.refreshTokenChars)} chars access/ID/refresh): ` +
      `${thousands(size.recordBytes)} B the encrypted record (value ${thousands(size.valueBytes)} B), ${thousands(size.totalBytes)} B with its share of the sid/sub index`,
  );
  console.log(
    `leak check (Redis store): RSS ${megabytes(leak.rssAtCheckpointBytes)} MB after ${thousands(leak.checkpointRequests)} requests, ` +
      `${megabytes(leak.rssAtEndBytes)} MB after ${thousands(leak.totalRequests)}: ${signed(leak.growthPercent, 1)} %`,
  );
  console.log('\ntargets:');
  for (const target of targets) console.log(`  ${target.met ? 'met   ' : 'MISSED'}  ${target.name}: ${target.detail}`);
}

function describeMachine() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  return {
    cores: os.availableParallelism(),
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown',
    memoryGb: Math.round(os.totalmem() / 1024 ** 3),
    kernel: os.release(),
    node: process.version,
    loadAverageAtStart: loadAverage(),
  };
}

function loadAverage(): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}
