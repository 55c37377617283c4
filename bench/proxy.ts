/**
 * `npm run bench`: the gateway's proxy hot path measured side by side with the
 * upstream alone, a bare Node reverse proxy and the setups a team would deploy
 * instead (express-openid-connect, Apache httpd + mod_auth_openidc), printed as a
 * table and written to bench/results/latest.json. Run by hand, never in
 * `npm test`: the numbers belong to the machine (and to whatever else it is doing).
 *
 * Everything runs here, on loopback. The gateway runs as the package ships it (built
 * first, then the `bff-gateway` command on dist/); the bare proxy and the
 * express-openid-connect peer run as plain JavaScript too (their types stripped once),
 * so that no contestant pays for type stripping at run time. Every request with a
 * cookie gets it set per request (the bare proxy is given the many-session cookies), so
 * that the load generator costs the same for every contestant. The processes under test
 * are child processes (apache2 and the BFF_WORKERS gateway trees of them), so that their
 * RSS and CPU time are their own; the IdP,
 * the upstream, redis-server and autocannon belong to this process. The comparison
 * (bare proxy, gateway with one and with many sessions, with DPoP and with two
 * workers, the peers) runs in
 * interleaved rounds, each round every contestant in turn, so that a slow minute of
 * a shared machine does not land on one of them only; the ratios are per round.
 *
 * Settings (environment, defaults in brackets): BENCH_SESSIONS [1000] or
 * `--sessions N`: distinct logins for the many-session contestants;
 * BENCH_LOGIN_CONCURRENCY [8]; BENCH_ROUNDS [5] × BENCH_ROUND_SECONDS [8] for the
 * comparison; BENCH_SECONDS [10] per run and BENCH_RUNS [3] for the other scenarios
 * (medians reported); BENCH_CONNECTIONS [50], BENCH_WARMUP_SECONDS [2],
 * BENCH_STORM_SESSIONS [20], BENCH_LEAK_REQUESTS [1000000] (RSS compared with the
 * first tenth), BENCH_SIZE_SESSIONS [1000], BENCH_MAX_MINUTES [20] (then everything
 * stops), BENCH_STRICT=1 (exit 1 when a target is missed).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type autocannon from 'autocannon';
import { loginThroughApp, loginThroughGateway } from '../test/support/browser-flow.ts';
import { startIdp, TEST_CLIENT_ID, TEST_CLIENT_SECRET, type TestIdp } from '../test/support/idp.ts';
import { getFreePort } from '../test/support/ports.ts';
import { startRedis } from '../test/support/redis.ts';
import { buildGateway, guardedCommand, plainJavaScript, sampleTree, spawnNode, waitForOk, type Child } from './children.ts';
import { distinctAccounts, loginMany, verifyContestant, type Contestant } from './contestants.ts';
import { startLeanUpstream, type LeanUpstream } from './lean-upstream.ts';
import { median, runLoad, type LoadResult } from './load.ts';
import { APACHE_CALLBACK_PATH, APACHE_INSTALL_HINT, APACHE_LOGIN_PATH, missingApachePrerequisites, startApache } from './peers/apache.ts';
import { connectRedisProbe, type RedisProbe } from './redis-probe.ts';
import { fixed, formatTable, megabytes, signed, thousands } from './report.ts';
import { measureSessionSize, type SessionSizeResult } from './session-size.ts';

const settings = {
  sessions: sessionsSetting(),
  loginConcurrency: setting('BENCH_LOGIN_CONCURRENCY', 8),
  rounds: setting('BENCH_ROUNDS', 5),
  roundSeconds: setting('BENCH_ROUND_SECONDS', 8),
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
 * The whole benchmark must finish within twelve minutes on the 2-core machine. The leak check comes
 * last but one and gets what is left of eleven of them, at least a minute: however slow the gateway,
 * it must not hold the benchmark (the session-size step after it takes about a second). When the time
 * runs out first, the report says so.
 */
const LEAK_ENDS_AFTER_MINUTES = 11;
const LEAK_MIN_SECONDS = 60;
/** BFF_REFRESH_SKEW's default: a token living less than twice this long is renewed at half its life. */
const GATEWAY_REFRESH_SKEW_SEC = 30;
const PATH = '/api/items/4711';
const REPO = fileURLToPath(new URL('..', import.meta.url));
const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
const SESSION_SECRET = randomBytes(48).toString('base64url');
const PEER_CALLBACK_PATH = '/callback';

function setting(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got "${text}"`);
  return value;
}

/** `--sessions N` (or `--sessions=N`) wins over BENCH_SESSIONS. */
function sessionsSetting(): number {
  const args = process.argv.slice(2);
  const at = args.findIndex((a) => a === '--sessions' || a.startsWith('--sessions='));
  const text = at < 0 ? undefined : args[at]?.includes('=') ? args[at]?.slice('--sessions='.length) : args[at + 1];
  if (at < 0) return Math.round(setting('BENCH_SESSIONS', 1000));
  const value = Number(text);
  if (text === undefined || !Number.isInteger(value) || value <= 0) throw new Error(`--sessions must be a positive whole number, got "${text ?? ''}"`);
  return value;
}

interface RunResult extends LoadResult {
  /** CPU seconds the process (tree) under test spent per 10,000 responses in this run. */
  cpuPer10k?: number;
  /** Commands Redis executed per response during this run. */
  redisPerRequest?: number;
  /** Refresh-token grants the IdP answered during the run. */
  refreshes?: number;
}

interface ScenarioResult {
  id: number;
  name: string;
  /** `runs` one after another, or one run per interleaved round of the comparison. */
  measuredAs: 'runs' | 'rounds';
  runs: RunResult[];
  rps: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  cpuPer10k?: number;
  rssBytes?: number;
  processes?: number;
  redisPerRequest?: number;
  tokenInRedis?: boolean;
  /** Over the warm-up and every run, not a median: the target is zero. */
  non2xx: number;
  errors: number;
  refreshes?: number;
}

interface SkippedScenario {
  id: number;
  name: string;
  reason: string;
}

interface Target {
  name: string;
  /** Undefined: not measured in this run (a peer was skipped). */
  met: boolean | undefined;
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
  `settings: ${settings.connections} connections, keep-alive, GET ${PATH}; comparison: ${settings.rounds} interleaved rounds × ${settings.roundSeconds} s, ${thousands(settings.sessions)} sessions for the many-session contestants; ` +
    `other scenarios: ${settings.runs} × ${settings.seconds} s after ${settings.warmupSeconds} s warm-up; refresh storm: ${settings.stormSessions} sessions, ${settings.stormTokenTtlSec} s access tokens; ` +
    `leak check: ${thousands(LEAK_CHECKPOINT)} vs ${thousands(settings.leakRequests)} requests\n`,
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
  printReport(results.scenarios, results.skipped, results.sessionSize, results.leak, results.targets);
  const wholeSec = Math.round(elapsedSec);
  console.log(`\nfinished in ${Math.floor(wholeSec / 60)} min ${wholeSec % 60} s; load average at end ${loadAverage()}; written to bench/results/latest.json`);
  if (process.env.BENCH_STRICT === '1' && results.targets.some((t) => t.met === false)) exitCode = 1;
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
  console.log('building the gateway as the package ships it (npm run build)…');
  buildGateway(REPO);
  const upstream = await startLeanUpstream();
  cleanups.push(() => upstream.close());
  const workDir = mkdtempSync(join(os.tmpdir(), 'bff-bench-'));
  cleanups.push(async () => rmSync(workDir, { recursive: true, force: true }));
  const redisBinary = guardedCommand('redis-server', workDir);
  const redisOptions = redisBinary ? { binary: redisBinary } : {};
  const redis = await startRedis(redisOptions);
  cleanups.push(() => redis.stop());
  const probe = await connectRedisProbe(redis.url);
  cleanups.push(() => probe.close());

  const ports = {
    memory: await gatewayPorts(),
    redis: await gatewayPorts(),
    many: await gatewayPorts(),
    dpop: await gatewayPorts(),
    storm: await gatewayPorts(),
    leak: await gatewayPorts(),
    workers: await gatewayPorts(),
    expressOidc: await getFreePort(),
    apache: await getFreePort(),
  };
  const gateways = [ports.memory, ports.redis, ports.many, ports.dpop, ports.leak, ports.workers];
  const idp = await startIdp({
    redirectUris: [...gateways.map((p) => `${p.url}/auth/callback`), `http://127.0.0.1:${ports.expressOidc}${PEER_CALLBACK_PATH}`, `http://127.0.0.1:${ports.apache}${APACHE_CALLBACK_PATH}`],
    postLogoutRedirectUris: gateways.map((p) => `${p.url}/`),
    accessTokenTtl: 3600,
  });
  cleanups.push(() => idp.close());
  distinctAccounts(idp, 'bench-user');
  const stormIdp = await startIdp({
    redirectUris: [`${ports.storm.url}/auth/callback`],
    postLogoutRedirectUris: [`${ports.storm.url}/`],
    accessTokenTtl: settings.stormTokenTtlSec,
  });
  cleanups.push(() => stormIdp.close());

  const scenarios: ScenarioResult[] = [];
  scenarios.push(await measureScenario(1, 'upstream direct (ceiling)', { url: `${upstream.url}${PATH}` }));

  {
    const gw = await startGatewayChild('gateway (memory)', ports.memory, idp, upstream.url, undefined);
    const { cookieHeader } = await loginThroughGateway(ports.memory.url);
    scenarios.push(await measureScenario(3, 'gateway, one session, memory store', { url: `${ports.memory.url}${PATH}`, cookies: [cookieHeader] }, gw.child));
    await gw.stop();
  }

  {
    const gw = await startGatewayChild('gateway (refresh storm)', ports.storm, stormIdp, upstream.url, redis.url);
    const cookies: string[] = [];
    for (let i = 0; i < settings.stormSessions; i++) {
      stormIdp.nextAccount = `storm-user-${i}`;
      cookies.push((await loginThroughGateway(ports.storm.url)).cookieHeader);
    }
    scenarios.push(
      await measureScenario(
        5,
        `gateway, refresh storm (${settings.stormSessions} sessions, ${settings.stormTokenTtlSec} s tokens, Redis)`,
        { url: `${ports.storm.url}${PATH}`, cookies },
        gw.child,
        probe,
        () => stormIdp.counts.refreshToken,
      ),
    );
    await gw.stop();
  }

  const comparison = await comparisonContestants(ports, idp, upstream, redis.url, probe);
  scenarios.push(...(await compare(comparison.contestants, probe)));
  for (const stop of comparison.stops) await stop();
  scenarios.sort((a, b) => a.id - b.id);

  const leak = await leakCheck(ports.leak, idp, upstream.url, redis.url);

  console.log(`bytes per session: writing ${thousands(settings.sizeSessions)} sessions through the gateway's session store…`);
  const sizeRedis = await startRedis(redisOptions);
  cleanups.push(() => sizeRedis.stop());
  const sessionSize = await measureSessionSize(sizeRedis.url, settings.sizeSessions);
  await sizeRedis.stop();

  return { scenarios, skipped: comparison.skipped, sessionSize, leak, targets: evaluate(scenarios, comparison.skipped, sessionSize, leak) };
}

/**
 * The contestants of the interleaved comparison, all started, logged in and verified before the first
 * round: the bare proxy, the gateway (Redis) with one session and with `settings.sessions`, and the two
 * peers with as many. A peer whose prerequisites are missing is skipped, saying how to install them.
 */
async function comparisonContestants(
  ports: { redis: GatewayPorts; many: GatewayPorts; dpop: GatewayPorts; workers: GatewayPorts; expressOidc: number; apache: number },
  idp: TestIdp,
  upstream: LeanUpstream,
  redisUrl: string,
  probe: RedisProbe,
) {
  const contestants: Contestant[] = [];
  const skipped: SkippedScenario[] = [];
  const stops: Array<() => Promise<void>> = [];
  const n = settings.sessions;
  const login = (label: string, loginOnce: () => Promise<string>): Promise<string[]> => loginMany(label, n, settings.loginConcurrency, loginOnce);
  console.log(`comparison: starting the contestants and logging ${thousands(n)} users into each many-session one…`);

  const bare = spawnNode('bare proxy', plainJavaScript(join(REPO, 'bench/bare-proxy.ts'), REPO), { NODE_ENV: 'production', BENCH_TARGET: upstream.url }, REPO);
  cleanups.push(() => bare.stop());
  stops.push(() => bare.stop());
  const { port: barePort } = JSON.parse(await bare.firstLine(15_000)) as { port: number };
  const bareContestant: Contestant = {
    id: 2,
    name: 'bare proxy (http-proxy-middleware, keep-alive)',
    label: 'bare',
    url: `http://127.0.0.1:${barePort}${PATH}`,
    cookies: [],
    child: bare,
    usesRedis: false,
  };
  contestants.push(bareContestant);

  const one = await startGatewayChild('gateway (Redis, one session)', ports.redis, idp, upstream.url, redisUrl);
  stops.push(one.stop);
  contestants.push({
    id: 4,
    name: 'gateway, one session, Redis store',
    label: 'gateway×1',
    url: `${ports.redis.url}${PATH}`,
    cookies: [(await loginThroughGateway(ports.redis.url)).cookieHeader],
    child: one.child,
    usesRedis: true,
  });

  // #4 with sender-constrained tokens (oidc-provider 9 has DPoP on): an ES256 proof signed per upstream request.
  const dpop = await startGatewayChild('gateway (Redis, one session, DPoP)', ports.dpop, idp, upstream.url, redisUrl, { BFF_DPOP: 'true' });
  stops.push(dpop.stop);
  contestants.push({
    id: 9,
    name: 'gateway, one session, Redis store, BFF_DPOP=true',
    label: 'gateway×1 DPoP',
    url: `${ports.dpop.url}${PATH}`,
    cookies: [(await loginThroughGateway(ports.dpop.url)).cookieHeader],
    child: dpop.child,
    usesRedis: true,
  });

  const many = await startGatewayChild(`gateway (Redis, ${n} sessions)`, ports.many, idp, upstream.url, redisUrl);
  stops.push(many.stop);
  const manyCookies = await login('gateway', async () => (await loginThroughGateway(ports.many.url)).cookieHeader);
  contestants.push({
    id: 6,
    name: `gateway, ${thousands(n)} sessions, Redis store`,
    label: `gateway×${n}`,
    url: `${ports.many.url}${PATH}`,
    cookies: manyCookies,
    child: many.child,
    usesRedis: true,
  });
  // The bare proxy passes them on untouched: its requests are then the gateway's, byte for byte.
  bareContestant.loadCookies = manyCookies;

  // #6 on every core: BFF_WORKERS=2 (a cluster primary and two workers; CPU and RSS of all three).
  const workers = await startGatewayChild(`gateway (Redis, ${n} sessions, 2 workers)`, ports.workers, idp, upstream.url, redisUrl, { BFF_WORKERS: '2' });
  stops.push(workers.stop);
  contestants.push({
    id: 10,
    name: `gateway, ${thousands(n)} sessions, Redis store, BFF_WORKERS=2`,
    label: `gateway×${n} 2 workers`,
    url: `${ports.workers.url}${PATH}`,
    cookies: await login('gateway, 2 workers', async () => (await loginThroughGateway(ports.workers.url)).cookieHeader),
    child: workers.child,
    usesRedis: true,
  });

  {
    const url = `http://127.0.0.1:${ports.expressOidc}`;
    const peer = spawnNode(
      'express-openid-connect peer',
      plainJavaScript(join(REPO, 'bench/peers/express-oidc.ts'), REPO),
      {
        NODE_ENV: 'production',
        BENCH_PORT: String(ports.expressOidc),
        BENCH_ISSUER: idp.issuer,
        BENCH_CLIENT_ID: TEST_CLIENT_ID,
        BENCH_CLIENT_SECRET: TEST_CLIENT_SECRET,
        BENCH_SECRET: SESSION_SECRET,
        BENCH_REDIS_URL: redisUrl,
        BENCH_TARGET: upstream.url,
      },
      REPO,
    );
    cleanups.push(() => peer.stop());
    stops.push(() => peer.stop());
    await peer.firstLine(15_000);
    contestants.push({
      id: 7,
      name: `express-openid-connect + http-proxy-middleware, ${thousands(n)} sessions, connect-redis`,
      label: 'express-oidc',
      url: `${url}${PATH}`,
      cookies: await login('express-openid-connect', async () => (await loginThroughApp(`${url}/login`, PEER_CALLBACK_PATH)).cookieHeader),
      child: peer,
      usesRedis: true,
    });
  }

  const apacheName = `Apache httpd + mod_auth_openidc, ${thousands(n)} sessions, Redis cache`;
  const missing = missingApachePrerequisites();
  if (missing) {
    const reason = `${missing}; install with \`${APACHE_INSTALL_HINT}\``;
    console.log(`  skipping ${apacheName}: ${reason}`);
    skipped.push({ id: 8, name: apacheName, reason });
  } else {
    const redisAddress = new URL(redisUrl).host;
    const apache = await startApache({
      port: ports.apache,
      issuer: idp.issuer,
      clientId: TEST_CLIENT_ID,
      clientSecret: TEST_CLIENT_SECRET,
      cryptoPassphrase: SESSION_SECRET,
      redisAddress,
      upstreamUrl: upstream.url,
    });
    cleanups.push(apache.stop);
    stops.push(apache.stop);
    try {
      contestants.push({
        id: 8,
        name: apacheName,
        label: 'apache',
        url: `${apache.url}${PATH}`,
        cookies: await login('mod_auth_openidc', async () => (await loginThroughApp(`${apache.url}${APACHE_LOGIN_PATH}`, APACHE_CALLBACK_PATH)).cookieHeader),
        child: apache.child,
        usesRedis: true,
      });
    } catch (err) {
      throw new Error(`${apacheName}: ${err instanceof Error ? err.message : String(err)}\nerror.log:\n${apache.errorLog()}`, { cause: err });
    }
  }

  for (const contestant of contestants) {
    if (contestant.cookies.length === 0) continue;
    const { tokenInRedis } = await verifyContestant(contestant, upstream, idp, contestant.usesRedis ? probe : undefined);
    if (tokenInRedis !== undefined) contestant.tokenInRedis = tokenInRedis;
  }
  return { contestants, skipped, stops };
}

/**
 * Every contestant warmed up, then `settings.rounds` rounds in which each runs once; the starting
 * contestant moves on by one each round, so that none is always first or always last.
 */
async function compare(contestants: readonly Contestant[], probe: RedisProbe): Promise<ScenarioResult[]> {
  const warmup = new Map<number, LoadResult>();
  for (const c of contestants) warmup.set(c.id, await load(targetOf(c), settings.warmupSeconds));
  const runs = new Map<number, RunResult[]>(contestants.map((c) => [c.id, []]));
  for (let round = 0; round < settings.rounds; round++) {
    const order = contestants.map((_, i) => contestants[(i + round) % contestants.length] as Contestant);
    for (const c of order) {
      await delay(300);
      const result = await measureOnce(targetOf(c), c.child, c.usesRedis ? probe : undefined);
      runs.get(c.id)?.push(result);
      console.log(`  round ${round + 1}/${settings.rounds} #${c.id} ${c.label}: ${runLine(result)}`);
    }
  }
  return contestants.map((c) => {
    const tree = sampleTree(c.child.pid);
    const first = warmup.get(c.id) as LoadResult;
    return {
      ...summarise(c.id, c.name, 'rounds', runs.get(c.id) ?? [], first),
      rssBytes: tree.rssBytes,
      processes: tree.processes,
      ...(c.tokenInRedis !== undefined ? { tokenInRedis: c.tokenInRedis } : {}),
    };
  });
}

function targetOf(c: Contestant): LoadTarget {
  return { url: c.url, cookies: c.loadCookies ?? c.cookies };
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

/** The `bff-gateway` command on the build (dist/), configured through the environment as an operator would, ready when /readyz says so. */
async function startGatewayChild(name: string, ports: GatewayPorts, idp: TestIdp, upstreamUrl: string, redisUrl: string | undefined, extraEnv: Record<string, string> = {}) {
  const dir = mkdtempSync(join(os.tmpdir(), 'bff-bench-'));
  const routesFile = join(dir, 'routes.json');
  writeFileSync(routesFile, JSON.stringify({ routes: [{ prefix: '/api/items', target: upstreamUrl, token: 'user' }] }));
  const child = spawnNode(
    name,
    join(REPO, 'bin/bff-gateway.js'),
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
      // The many-session scenario and the refresh storm sign users in from 127.0.0.1 by the hundred, beyond the per-address login limit.
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
  /** Taken in turn by successive requests (none: no cookie). */
  cookies?: readonly string[];
}

function load(target: LoadTarget, durationSec: number): Promise<LoadResult> {
  const cookies = target.cookies ?? [];
  let next = 0;
  const rotate = (request: autocannon.Request): autocannon.Request => {
    next = (next + 1) % cookies.length;
    return { ...request, headers: { ...request.headers, cookie: cookies[next] as string } };
  };
  // Every request of every scenario with cookies gets its cookie set per request, even when there is only one:
  // autocannon rebuilds each such request, and that work shares the machine with the contestant.
  return runLoad({
    url: target.url,
    connections: settings.connections,
    durationSec,
    headers: { accept: 'application/json', 'x-csrf': '1' },
    ...(cookies.length > 0 ? { setupRequest: rotate } : {}),
    maxSeconds: durationSec + 30,
  });
}

/** One timed run, with the CPU time of the process tree under test and the Redis commands it caused. */
async function measureOnce(target: LoadTarget, child?: Child, probe?: RedisProbe, refreshCount?: () => number, durationSec = settings.roundSeconds): Promise<RunResult> {
  const before = child ? sampleTree(child.pid) : undefined;
  const commandsBefore = await probe?.commands();
  const refreshesBefore = refreshCount?.();
  const result = await load(target, durationSec);
  const after = child ? sampleTree(child.pid) : undefined;
  const commandsAfter = await probe?.commands();
  return {
    ...result,
    ...(before && after ? { cpuPer10k: ((after.cpuSeconds - before.cpuSeconds) / result.responses) * 10_000 } : {}),
    ...(commandsBefore !== undefined && commandsAfter !== undefined ? { redisPerRequest: (commandsAfter - commandsBefore) / result.responses } : {}),
    ...(refreshesBefore !== undefined && refreshCount ? { refreshes: refreshCount() - refreshesBefore } : {}),
  };
}

function runLine(r: RunResult): string {
  return (
    `${thousands(r.rps)} req/s, p50 ${fixed(r.p50Ms, 2)} ms, p99 ${fixed(r.p99Ms, 2)} ms, CPU ${fixed(r.cpuPer10k, 2)} s/10k` +
    `${r.redisPerRequest !== undefined ? `, Redis ${fixed(r.redisPerRequest, 2)}/req` : ''}, non-2xx ${r.non2xx}, errors ${r.errors}${r.refreshes !== undefined ? `, refreshes ${r.refreshes}` : ''}`
  );
}

/** Medians over the runs; non-2xx and errors summed, the warm-up's included. */
function summarise(id: number, name: string, measuredAs: ScenarioResult['measuredAs'], runs: RunResult[], warmup: LoadResult): ScenarioResult {
  const of = (pick: (r: RunResult) => number | undefined): number | undefined => {
    const values = runs.map(pick).filter((v): v is number => v !== undefined);
    return values.length > 0 ? median(values) : undefined;
  };
  const cpuPer10k = of((r) => r.cpuPer10k);
  const redisPerRequest = of((r) => r.redisPerRequest);
  const refreshes = of((r) => r.refreshes);
  return {
    id,
    name,
    measuredAs,
    runs,
    rps: of((r) => r.rps) as number,
    p50Ms: of((r) => r.p50Ms) as number,
    p99Ms: of((r) => r.p99Ms) as number,
    p999Ms: of((r) => r.p999Ms) as number,
    ...(cpuPer10k !== undefined ? { cpuPer10k } : {}),
    ...(redisPerRequest !== undefined ? { redisPerRequest } : {}),
    non2xx: warmup.non2xx + runs.reduce((sum, r) => sum + r.non2xx, 0),
    errors: warmup.errors + runs.reduce((sum, r) => sum + r.errors, 0),
    ...(refreshes !== undefined ? { refreshes } : {}),
  };
}

/** A scenario on its own: a warm-up, then `settings.runs` runs in a row. */
async function measureScenario(id: number, name: string, target: LoadTarget, child?: Child, probe?: RedisProbe, refreshCount?: () => number): Promise<ScenarioResult> {
  const warmup = await load(target, settings.warmupSeconds);
  const runs: RunResult[] = [];
  for (let run = 1; run <= settings.runs; run++) {
    await delay(500);
    const result = await measureOnce(target, child, probe, refreshCount, settings.seconds);
    runs.push(result);
    console.log(`  #${id} run ${run}/${settings.runs}: ${runLine(result)}`);
  }
  const summary = summarise(id, name, 'runs', runs, warmup);
  console.log(`#${id} ${name}: ${thousands(summary.rps)} req/s (median of ${runs.length})`);
  if (!child) return summary;
  const tree = sampleTree(child.pid);
  return { ...summary, rssBytes: tree.rssBytes, processes: tree.processes };
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
  const leakLoad = (amount: number): Promise<LoadResult> =>
    runLoad({
      url: `${ports.url}${PATH}`,
      connections: settings.connections,
      amount,
      headers: { accept: 'application/json', 'x-csrf': '1', cookie: cookieHeader },
      maxSeconds: Math.max(1, (deadline - Date.now()) / 1000),
    });
  const first = await leakLoad(LEAK_CHECKPOINT);
  // A moment for in-flight work (session touches, GC) to finish before reading RSS, the same both times.
  await delay(1000);
  const atCheckpoint = sampleTree(gw.child.pid).rssBytes;
  console.log(`  after ${thousands(first.responses)} requests: RSS ${megabytes(atCheckpoint)} MB (${thousands(first.rps)} req/s)`);
  const rest = first.capped ? undefined : await leakLoad(settings.leakRequests - LEAK_CHECKPOINT);
  await delay(1000);
  const atEnd = sampleTree(gw.child.pid).rssBytes;
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

/** The per-round ratio a/b of some figure of two contestants measured in the same rounds. */
interface RoundRatios {
  label: string;
  ratios: number[];
  median: number;
}

function roundRatios(scenarios: readonly ScenarioResult[], a: number, b: number, pick: (r: RunResult) => number | undefined, what: string): RoundRatios | undefined {
  const x = scenarios.find((s) => s.id === a);
  const y = scenarios.find((s) => s.id === b);
  if (!x || !y || x.measuredAs !== 'rounds' || y.measuredAs !== 'rounds') return undefined;
  const ratios = x.runs.map((run, i) => {
    const num = pick(run);
    const other = y.runs[i];
    const den = other ? pick(other) : undefined;
    return num !== undefined && den !== undefined && den > 0 ? num / den : Number.NaN;
  });
  return { label: `${what} #${a}/#${b}`, ratios, median: median(ratios.filter((r) => Number.isFinite(r))) };
}

function ratioList(r: RoundRatios): string {
  return r.ratios.map((v) => fixed(v, 2)).join(', ');
}

/** The targets of issue 16, each with the figures that decide it. */
function evaluate(scenarios: readonly ScenarioResult[], skipped: readonly SkippedScenario[], size: SessionSizeResult, leak: LeakResult): Target[] {
  const byId = (id: number): ScenarioResult | undefined => scenarios.find((s) => s.id === id);
  const bare = byId(2) as ScenarioResult;
  const n = thousands(settings.sessions);
  const targets: Target[] = [];
  const notMeasured = (id: number): string => {
    const skip = skipped.find((s) => s.id === id);
    return skip ? `not measured: ${skip.name} skipped (${skip.reason})` : `not measured: #${id} missing`;
  };
  const rpsTarget = (a: number, b: number, factor: number, name: string): void => {
    const r = roundRatios(scenarios, a, b, (run) => run.rps, 'req/s');
    const x = byId(a);
    const y = byId(b);
    targets.push(
      r && x && y
        ? {
            name,
            met: r.median >= factor,
            detail: `${fixed(r.median, 2)}× (median of rounds ${ratioList(r)}; ${thousands(x.rps)} vs ${thousands(y.rps)} req/s)`,
          }
        : { name, met: undefined, detail: notMeasured(b) },
    );
  };
  rpsTarget(4, 2, 1.0, 'gateway (Redis), one session, ≥ 1.0× the bare proxy’s req/s');
  rpsTarget(6, 2, 1.0, `gateway (Redis), ${n} sessions, ≥ 1.0× the bare proxy’s req/s`);
  for (const id of [4, 6]) {
    const s = byId(id) as ScenarioResult;
    const over = s.p99Ms - bare.p99Ms;
    targets.push({ name: `#${id} p99 no more than 2 ms above the bare proxy’s`, met: over <= 2, detail: `${fixed(s.p99Ms, 2)} ms vs ${fixed(bare.p99Ms, 2)} ms (${signed(over, 2)} ms)` });
  }
  {
    // Not a target of issue 16's: how much the proof per request costs, next to the Bearer scenario it equals otherwise.
    const r = roundRatios(scenarios, 9, 4, (run) => run.rps, 'req/s');
    const dpop = byId(9);
    const bearer = byId(4);
    targets.push(
      r && dpop && bearer
        ? {
            name: 'DPoP (#9) req/s ≥ 70 % of Bearer (#4)',
            met: r.median >= 0.7,
            detail: `${fixed(r.median, 2)}× (median of rounds ${ratioList(r)}); p99 ${signed(dpop.p99Ms - bearer.p99Ms, 2)} ms; CPU ${signed((dpop.cpuPer10k ?? Number.NaN) - (bearer.cpuPer10k ?? Number.NaN), 2)} s/10k`,
          }
        : { name: 'DPoP (#9) req/s ≥ 70 % of Bearer (#4)', met: undefined, detail: notMeasured(9) },
    );
  }
  rpsTarget(6, 7, 1.5, `gateway ≥ 1.5× express-openid-connect (${n} sessions each)`);
  rpsTarget(6, 8, 2.0, `gateway ≥ 2× mod_auth_openidc (${n} sessions each)`);
  for (const id of [4, 6]) {
    const r = roundRatios(scenarios, id, 2, (run) => run.cpuPer10k, 'CPU');
    const s = byId(id) as ScenarioResult;
    targets.push({
      name: `#${id} CPU per 10k requests ≤ 1.2× the bare proxy’s`,
      met: r !== undefined && r.median <= 1.2,
      detail: r ? `${fixed(r.median, 2)}× (median of rounds ${ratioList(r)}; ${fixed(s.cpuPer10k, 2)} vs ${fixed(bare.cpuPer10k, 2)} s)` : 'not measured',
    });
  }
  {
    const many = byId(6) as ScenarioResult;
    const over = ((many.rssBytes ?? 0) - (bare.rssBytes ?? 0)) / 1024 / 1024;
    targets.push({
      name: `RSS of #6 (${n} sessions) ≤ the bare proxy’s + 40 MB after the runs`,
      met: over <= 40,
      detail: `${megabytes(many.rssBytes)} vs ${megabytes(bare.rssBytes)} MB (${signed(over, 1)} MB)`,
    });
  }
  targets.push({
    name: `RSS growth from ${thousands(LEAK_CHECKPOINT)} to ${thousands(settings.leakRequests)} requests < 10 %`,
    met: leak.complete && leak.growthPercent < 10,
    detail: `${signed(leak.growthPercent, 1)} % (${megabytes(leak.rssAtCheckpointBytes)} → ${megabytes(leak.rssAtEndBytes)} MB)${leak.complete ? '' : `; INCOMPLETE: stopped after ${thousands(leak.totalRequests)} requests`}`,
  });
  targets.push({
    name: '≤ 3.5 KB of Redis per session record, index included (1.1 KB access and ID tokens)',
    met: size.totalBytes <= 3.5 * 1024,
    detail: `${thousands(size.totalBytes)} B (record ${thousands(size.recordBytes)} B, value ${thousands(size.valueBytes)} B)`,
  });
  targets.push(stormTarget(byId(5) as ScenarioResult));
  const failing = scenarios.filter((s) => s.non2xx + s.errors > 0);
  const leakFailed = leak.non2xx + leak.errors > 0;
  targets.push({
    name: 'zero non-2xx responses in every scenario',
    met: failing.length === 0 && !leakFailed,
    detail:
      failing.length === 0 && !leakFailed
        ? 'none (warm-ups and leak check included)'
        : [...failing.map((s) => `#${s.id}: ${s.non2xx} non-2xx, ${s.errors} errors`), ...(leakFailed ? [`leak check: ${leak.non2xx} non-2xx, ${leak.errors} errors`] : [])].join('; '),
  });
  return targets;
}

/**
 * One refresh grant per renewal that fell due, none twice: each session's token is renewed
 * GATEWAY_REFRESH_SKEW_SEC before it expires, or at half its life when it lives shorter than
 * twice that, so a run of D seconds owes each session D / interval renewals, give or take
 * the one whose moment straddles the run's start or end.
 */
function stormTarget(storm: ScenarioResult): Target {
  const intervalSec = settings.stormTokenTtlSec - Math.min(GATEWAY_REFRESH_SKEW_SEC, settings.stormTokenTtlSec / 2);
  const sessions = settings.stormSessions;
  const verdicts = storm.runs.map((run) => {
    const due = (sessions * run.elapsedSec) / intervalSec;
    const grants = run.refreshes ?? 0;
    return { due, grants, ok: grants <= Math.ceil(due) + sessions && grants >= Math.floor(due) - sessions };
  });
  const failing = storm.non2xx + storm.errors;
  return {
    name: 'refresh storm: refresh grants = renewals due, 0 non-2xx',
    met: verdicts.every((v) => v.ok) && failing === 0,
    detail:
      `grants vs due per run: ${verdicts.map((v) => `${v.grants}/${fixed(v.due, 0)}`).join(', ')} ` +
      `(${sessions} sessions, ${settings.stormTokenTtlSec} s tokens renewed every ${fixed(intervalSec, 1)} s; ±${sessions} allowed for the runs' edges); ${failing} non-2xx or errors`,
  };
}

function printReport(scenarios: readonly ScenarioResult[], skipped: readonly SkippedScenario[], size: SessionSizeResult, leak: LeakResult, targets: readonly Target[]): void {
  const bareRps = scenarios.find((s) => s.id === 2)?.rps ?? Number.NaN;
  console.log(
    `\n${settings.connections} connections; medians of ${settings.rounds} interleaved rounds × ${settings.roundSeconds} s (#2, #4, #6–#8) or of ${settings.runs} runs × ${settings.seconds} s (#1, #3, #5); ` +
      'latency in ms; RSS after the runs and CPU summed over every process of the contestant; Redis = commands per request',
  );
  console.log(
    formatTable(scenarios, [
      { title: '#', value: (s) => String(s.id) },
      { title: 'scenario', value: (s) => s.name, align: 'left' },
      { title: 'req/s', value: (s) => thousands(s.rps) },
      { title: 'p50', value: (s) => fixed(s.p50Ms, 2) },
      { title: 'p99', value: (s) => fixed(s.p99Ms, 2) },
      { title: 'p99.9', value: (s) => fixed(s.p999Ms, 2) },
      { title: 'vs #2', value: (s) => `${((s.rps / bareRps) * 100).toFixed(0)} %` },
      { title: 'RSS MB', value: (s) => `${megabytes(s.rssBytes)}${s.processes !== undefined && s.processes > 1 ? ` (${s.processes} proc)` : ''}` },
      { title: 'CPU s/10k', value: (s) => fixed(s.cpuPer10k, 2) },
      { title: 'Redis/req', value: (s) => fixed(s.redisPerRequest, 2) },
      { title: 'token in Redis', value: (s) => (s.tokenInRedis === undefined ? '—' : s.tokenInRedis ? 'READABLE' : 'no') },
      { title: 'non-2xx', value: (s) => String(s.non2xx) },
      { title: 'errors', value: (s) => String(s.errors) },
    ]),
  );
  for (const skip of skipped) console.log(`#${skip.id} ${skip.name}: SKIPPED, ${skip.reason}`);
  const storm = scenarios.find((s) => s.id === 5);
  console.log(`#1: the upstream lives in the benchmark process (no RSS/CPU of its own). #5: ${thousands(storm?.refreshes)} token refreshes per run (median).`);

  console.log(`\ninterleaved rounds, every round's ratio (the machine's noise shows in their spread):`);
  for (const [a, b] of [
    [4, 2],
    [6, 2],
    [6, 4],
    [6, 7],
    [6, 8],
    [7, 2],
    [8, 2],
    [9, 4],
    [10, 6],
    [10, 2],
  ] as const) {
    const rps = roundRatios(scenarios, a, b, (r) => r.rps, 'req/s');
    const cpu = roundRatios(scenarios, a, b, (r) => r.cpuPer10k, 'CPU/req');
    if (rps && cpu) console.log(`  #${a}/#${b}: req/s ${fixed(rps.median, 2)}× (${ratioList(rps)}); CPU per request ${fixed(cpu.median, 2)}× (${ratioList(cpu)})`);
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
  for (const target of targets) console.log(`  ${target.met === undefined ? 'n/a   ' : target.met ? 'met   ' : 'MISSED'}  ${target.name}: ${target.detail}`);
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
