/**
 * `node bench/ab.ts <dirA> <dirB>`: the authenticated GET (Redis session) of two checkouts of the
 * gateway, measured in interleaved rounds on one IdP, upstream and redis-server, so that a change to
 * the hot path is judged against its own "before" under the same machine load rather than against a
 * figure from another hour. Prints each round and the medians of the ratio B / A for req/s and for
 * CPU per 10k requests. Settings: AB_ROUNDS [6], AB_SECONDS [8], AB_CONNECTIONS [50], AB_SESSIONS [1]
 * (distinct logins per side, whose cookies successive requests take in turn); AB_ENV_A and
 * AB_ENV_B add variables to one side (`BFF_DPOP=true`, or `NODE_OPTIONS=--cpu-prof --cpu-prof-dir=/tmp/prof`
 * to profile it), space-separated NAME=value pairs.
 *
 * Each directory must be a checkout with its dependencies installed (a git worktree whose
 * node_modules is a symlink to this one's will do).
 */
import { randomBytes } from 'node:crypto';
import type autocannon from 'autocannon';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { createClient } from '@redis/client';
import { join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { loginThroughGateway } from '../test/support/browser-flow.ts';
import { loginMany } from './contestants.ts';
import { startIdp, TEST_CLIENT_ID, TEST_CLIENT_SECRET } from '../test/support/idp.ts';
import { getFreePort } from '../test/support/ports.ts';
import { startRedis } from '../test/support/redis.ts';
import { sampleProcess, spawnNode, waitForOk, type Child } from './children.ts';
import { startLeanUpstream } from './lean-upstream.ts';
import { median, runLoad } from './load.ts';
import { fixed, thousands } from './report.ts';

const [dirA, dirB] = process.argv.slice(2).map((d) => resolve(d));
if (!dirA || !dirB) {
  console.error('usage: node bench/ab.ts <checkout A> <checkout B>');
  process.exit(2);
}
const rounds = Number(process.env.AB_ROUNDS ?? 6);
const seconds = Number(process.env.AB_SECONDS ?? 8);
const connections = Number(process.env.AB_CONNECTIONS ?? 50);
const sessions = Number(process.env.AB_SESSIONS ?? 1);
const PATH = '/api/items/4711';
const SESSION_SECRET = randomBytes(48).toString('base64url');
/** `NAME=value NAME2=value2`; a value may not hold a space (NODE_OPTIONS with several flags: separate them with commas, turned into spaces). */
function extraEnv(text: string | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of (text ?? '').split(' ').filter(Boolean)) {
    const at = pair.indexOf('=');
    if (at > 0) env[pair.slice(0, at)] = pair.slice(at + 1).replaceAll(',', ' ');
  }
  return env;
}
const EXTRA_ENV = [extraEnv(process.env.AB_ENV_A), extraEnv(process.env.AB_ENV_B)];

const upstream = await startLeanUpstream();
const redis = await startRedis();
const redisClient = createClient({ url: redis.url });
await redisClient.connect();
/** Commands Redis has executed since it started, INFO and this client's own excluded. */
async function redisCommands(): Promise<number> {
  const info = await redisClient.info('commandstats');
  let total = 0;
  for (const match of info.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)) if (match[1] !== 'info') total += Number(match[2]);
  return total;
}
const sides = await Promise.all([dirA, dirB].map(async (dir) => ({ dir, port: await getFreePort(), adminPort: await getFreePort() })));
const idp = await startIdp({ redirectUris: sides.map((s) => `http://127.0.0.1:${s.port}/auth/callback`), accessTokenTtl: 3600 });
const work = mkdtempSync(join(os.tmpdir(), 'bff-ab-'));
writeFileSync(join(work, 'routes.json'), JSON.stringify({ routes: [{ prefix: '/api/items', target: upstream.url, token: 'user' }] }));

interface Gateway {
  child: Child;
  url: string;
  cookies: string[];
}
interface Measured {
  /** Redis commands per request (either side's, while only it ran). */
  redis: number;
  rps: number;
  cpu: number;
  p99: number;
}

const children: Child[] = [];
try {
  const gateways: Gateway[] = [];
  for (const [index, side] of sides.entries()) {
    const url = `http://127.0.0.1:${side.port}`;
    const child = spawnNode(
      side.dir,
      join(side.dir, 'src/index.ts'),
      {
        NODE_ENV: 'production',
        BFF_PUBLIC_URL: url,
        BFF_PORT: String(side.port),
        BFF_ADMIN_PORT: String(side.adminPort),
        BFF_ISSUER_URL: idp.issuer,
        BFF_ALLOW_INSECURE_ISSUER: 'true',
        BFF_CLIENT_ID: TEST_CLIENT_ID,
        BFF_CLIENT_SECRET: TEST_CLIENT_SECRET,
        BFF_SESSION_SECRETS: SESSION_SECRET,
        BFF_ROUTES_FILE: join(work, 'routes.json'),
        BFF_LOG_LEVEL: 'warn',
        BFF_SHUTDOWN_TIMEOUT: '2',
        BFF_REDIS_URL: redis.url,
        // Many logins from one address in a few seconds are the benchmark, not an attack.
        BFF_RATE_LIMIT_LOGIN: 'off',
        BFF_RATE_LIMIT_CALLBACK: 'off',
        ...EXTRA_ENV[index],
      },
      work,
    );
    children.push(child);
    await waitForOk(child, `http://127.0.0.1:${side.adminPort}/readyz`, 30_000);
    const cookies = await loginMany(`side ${index === 0 ? 'A' : 'B'}`, sessions, 8, async () => (await loginThroughGateway(url)).cookieHeader);
    gateways.push({ child, url: `${url}${PATH}`, cookies });
  }
  const measure = async (g: Gateway, durationSec: number): Promise<Measured> => {
    const before = sampleProcess(g.child.pid);
    const commandsBefore = await redisCommands();
    let next = 0;
    // Every request's cookie set per request, even with one session: both sides cost the load generator the same.
    const setupRequest = (request: autocannon.Request): autocannon.Request => {
      next = (next + 1) % g.cookies.length;
      return { ...request, headers: { ...request.headers, cookie: g.cookies[next] as string } };
    };
    const r = await runLoad({ url: g.url, connections, durationSec, headers: { accept: 'application/json', 'x-csrf': '1' }, setupRequest, maxSeconds: durationSec + 30 });
    const after = sampleProcess(g.child.pid);
    const commands = (await redisCommands()) - commandsBefore - 1;
    if (r.non2xx > 0 || r.errors > 0) throw new Error(`${g.child.name}: ${r.non2xx} non-2xx, ${r.errors} errors`);
    return { redis: commands / r.responses, rps: r.rps, cpu: ((after.cpuSeconds - before.cpuSeconds) / r.responses) * 10_000, p99: r.p99Ms };
  };
  for (const g of gateways) await measure(g, 2);
  const rpsRatios: number[] = [];
  const cpuRatios: number[] = [];
  for (let round = 1; round <= rounds; round++) {
    // Alternate which side goes first, so that neither always runs on a warmer machine.
    const order = round % 2 === 1 ? [0, 1] : [1, 0];
    const got: Measured[] = [];
    for (const i of order) {
      await delay(300);
      got[i] = await measure(gateways[i] as Gateway, seconds);
    }
    const [a, b] = got as [Measured, Measured];
    rpsRatios.push(b.rps / a.rps);
    cpuRatios.push(b.cpu / a.cpu);
    console.log(
      `round ${round}: A ${thousands(a.rps)} req/s, ${fixed(a.cpu, 2)} CPU s/10k, p99 ${fixed(a.p99, 2)} ms, Redis ${fixed(a.redis, 3)}/req | B ${thousands(b.rps)} req/s, ${fixed(b.cpu, 2)} CPU s/10k, p99 ${fixed(b.p99, 2)} ms, Redis ${fixed(b.redis, 3)}/req | B/A ${fixed(b.rps / a.rps, 3)}`,
    );
  }
  console.log(`\nA = ${dirA}\nB = ${dirB}`);
  console.log(`B/A req/s: median ${fixed(median(rpsRatios), 3)} (rounds: ${rpsRatios.map((r) => fixed(r, 3)).join(', ')})`);
  console.log(`B/A CPU per request: median ${fixed(median(cpuRatios), 3)} (rounds: ${cpuRatios.map((r) => fixed(r, 3)).join(', ')})`);
} finally {
  for (const child of children) await child.stop();
  await idp.close();
  await redisClient.close();
  await redis.stop();
  await upstream.close();
  rmSync(work, { recursive: true, force: true });
}
process.exit(0);
