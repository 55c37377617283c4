/**
 * What the comparison of `npm run bench` needs around each server under test:
 * many real logins, and proof before measuring that a request through it is what
 * it claims to be (the upstream gets a bearer token the IdP issued, no cookie; no
 * session, no access).
 */
import type { TestIdp } from '../test/support/idp.ts';
import { TEST_CLIENT_ID } from '../test/support/idp.ts';
import type { Child } from './children.ts';
import type { LeanUpstream } from './lean-upstream.ts';
import type { RedisProbe } from './redis-probe.ts';
import { thousands } from './report.ts';

/** A server in the interleaved comparison, with the cookies its requests take in turn. */
export interface Contestant {
  id: number;
  name: string;
  /** Short, for the per-round ratio lines. */
  label: string;
  url: string;
  /** Empty: requests carry no cookie. */
  cookies: readonly string[];
  /** Cookies it is driven with though it has no sessions (the bare proxy gets the many-session cookies, so that every contestant's requests look alike and cost the load generator the same). */
  loadCookies?: readonly string[];
  /** The process (tree) whose CPU time and RSS are the contestant's. */
  child: Child;
  /** Redis commands are counted for it (only one contestant runs at a time). */
  usesRedis: boolean;
  /** Whether the access token it sent upstream could be read in Redis after login. */
  tokenInRedis?: boolean;
}

/**
 * Makes every login the IdP completes from now on a different user (`<prefix>-0`, `-1`, …).
 * The test IdP logs in `nextAccount`, read once per login; parallel logins cannot set it in
 * turn, but distinct users is all the sessions need, not which login got which.
 */
export function distinctAccounts(idp: TestIdp, prefix: string): void {
  let next = 0;
  Object.defineProperty(idp, 'nextAccount', {
    configurable: true,
    get: () => `${prefix}-${next++}`,
    set: () => undefined,
  });
}

/** `count` logins, `concurrency` at a time; resolves with their cookie headers, in no particular order. */
export async function loginMany(label: string, count: number, concurrency: number, login: () => Promise<string>): Promise<string[]> {
  const started = performance.now();
  const cookies: string[] = [];
  let begun = 0;
  const worker = async (): Promise<void> => {
    while (begun < count) {
      begun += 1;
      cookies.push(await login());
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  const seconds = (performance.now() - started) / 1000;
  console.log(`  ${label}: ${thousands(count)} logins in ${seconds.toFixed(1)} s (${thousands(count / seconds)}/s)`);
  if (new Set(cookies).size !== cookies.length) throw new Error(`${label}: two logins got the same session cookie`);
  return cookies;
}

const VERIFY_TIMEOUT_MS = 5_000;

/**
 * One request with a session and one without, before any load: the first must be a 200 whose
 * upstream request carried `Authorization: Bearer <an active token the IdP issued to the client>`
 * and no Cookie; the second a 401 that never reached the upstream. Then whether that token can
 * be read in Redis.
 */
export async function verifyContestant(contestant: Contestant, upstream: LeanUpstream, idp: TestIdp, probe: RedisProbe | undefined): Promise<{ tokenInRedis?: boolean }> {
  const fail = (why: string): Error => new Error(`${contestant.name}: verification failed: ${why}\n${contestant.child.output()}`);
  const seen = upstream.nextRequestHeaders(VERIFY_TIMEOUT_MS);
  // Awaited below; until then a rejection must not count as unhandled.
  seen.catch(() => undefined);
  const response = await fetch(contestant.url, { headers: { accept: 'application/json', 'x-csrf': '1', cookie: contestant.cookies[0] ?? '' } });
  const body = await response.text();
  if (response.status !== 200) throw fail(`HTTP ${response.status} with a session: ${body.slice(0, 300)}`);
  const headers = await seen;
  // A DPoP-bound token (BFF_DPOP=true) travels as `DPoP <token>` with its proof beside it.
  const [, scheme, bearer] = /^(Bearer|DPoP) (\S+)$/.exec(headers.authorization ?? '') ?? [];
  if (bearer === undefined) throw fail(`the upstream got Authorization ${JSON.stringify(headers.authorization)}`);
  if (scheme === 'DPoP' && headers.dpop === undefined) throw fail('the upstream got a DPoP token without a DPoP proof');
  if (headers.cookie !== undefined) throw fail(`the upstream got a Cookie header (${headers.cookie.length} chars)`);
  const introspection = await idp.introspect(bearer);
  if (!introspection.active || introspection.client_id !== TEST_CLIENT_ID) throw fail(`the bearer token is not an active token of ${TEST_CLIENT_ID}: ${JSON.stringify(introspection)}`);

  const anonymous = await fetch(contestant.url, { headers: { accept: 'application/json', 'x-csrf': '1' } });
  await anonymous.arrayBuffer();
  if (anonymous.status !== 401) throw fail(`HTTP ${anonymous.status} without a session, expected 401`);

  if (probe === undefined) return {};
  const { found, keysScanned } = await probe.holdsText(bearer);
  console.log(
    `  verified ${contestant.name}: 200 with an active bearer token and no cookie upstream, 401 without a session; token ${found ? 'READABLE' : 'not found'} in Redis (${thousands(keysScanned)} keys scanned)`,
  );
  return { tokenInRedis: found };
}
