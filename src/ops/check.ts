import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { pino } from 'pino';
import { createClient } from '@redis/client';
import { ConfigError, loadConfig } from '../config/load.ts';
import { withEnvFile, type Env } from '../config/env-file.ts';
import { resolveSecretFiles } from '../config/secrets.ts';
import type { GatewayConfig, RedisTopology, RouteRequirement } from '../config/types.ts';
import { CONFIG_VARIABLES, describeUnknown, maskUrl, unknownVariables } from '../config/variables.ts';
import { probeClientCredentials, type CredentialsVerdict } from '../oidc/credentials-probe.ts';
import { discoverOnce, type ProviderMetadata } from '../oidc/discovery-probe.ts';
import type { Fapi2Expectations } from '../oidc/fapi2.ts';
import { createRedisConnection } from '../store/redis-client.ts';
import { checkFapi2Expectations, reportFapi2 } from './check-fapi2.ts';
import { reasonOf } from './error-reason.ts';

export interface CheckOptions {
  env: Env;
  cwd: string;
  /** Receives the report, one line per call. */
  write(line: string): void;
  /** `--strict`: an unknown `BFF_*` variable (usually a typo) fails the check instead of warning. */
  strict?: boolean;
  /** Per network check (IdP discovery, Redis PING); default 5 s. */
  timeoutMs?: number;
}

type Level = 'ok' | 'warn' | 'FAIL';

/**
 * `--check`: everything the gateway would find wrong at start-up, and what
 * it would find wrong only later (an unreachable IdP or Redis, a typo in a
 * variable name), in one readable report. Secrets are masked. Returns the
 * exit code: 0 when nothing is wrong, 1 otherwise (warnings do not fail).
 */
export async function runCheck(options: CheckOptions): Promise<number> {
  const { write, cwd } = options;
  const timeoutMs = options.timeoutMs ?? 5000;
  const results: Array<{ level: Level; text: string }> = [];
  const report = (level: Level, text: string): void => {
    results.push({ level, text });
  };

  write('bff-gateway configuration check');
  let env: Env = options.env;
  try {
    const loaded = withEnvFile(options.env, cwd);
    env = loaded.env;
    write(`env file: ${loaded.file ?? 'none (environment only)'}`);
  } catch {
    // loadConfig reports the unreadable env file with the other problems.
  }
  // The raw values, for the network checks even when the configuration as a whole is invalid.
  const raw = resolveSecretFiles(env, cwd).env;

  let config: GatewayConfig | undefined;
  try {
    config = loadConfig(options.env, cwd);
    report('ok', 'configuration: every variable and the routes file are valid');
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const problem of err.problems) report('FAIL', problem);
  }

  for (const unknown of unknownVariables(env)) report(options.strict ? 'FAIL' : 'warn', describeUnknown(unknown));

  if (config) printConfiguration(config, env, write);

  const issuer = config?.issuerUrl ?? httpUrl(raw.BFF_ISSUER_URL);
  if (issuer) await checkIdp(issuer, config?.clientId ?? raw.BFF_CLIENT_ID ?? 'bff-gateway', config, checkFapi2Expectations(config, raw), timeoutMs, report);
  if (config?.redis && config.redis.kind !== 'single') await checkRedisTopology(config.redis, timeoutMs, report);
  else {
    const redisUrl = config ? (config.redis?.kind === 'single' ? config.redis.url : undefined) : raw.BFF_REDIS_URL;
    if (redisUrl) await checkRedis(redisUrl, timeoutMs, report);
    else if (config) report('warn', 'BFF_REDIS_URL: unset, so sessions live in this process: one instance only, lost on restart');
  }

  write('');
  write('Checks');
  for (const { level, text } of results) write(`  ${level.padEnd(4)}  ${text}`);
  const failures = results.filter((r) => r.level === 'FAIL').length;
  const warnings = results.filter((r) => r.level === 'warn').length;
  write('');
  write(
    failures === 0
      ? `Result: OK${warnings ? ` (${warnings} warning${warnings === 1 ? '' : 's'})` : ''}`
      : `Result: ${failures} problem${failures === 1 ? '' : 's'}${warnings ? `, ${warnings} warning${warnings === 1 ? '' : 's'}` : ''}: fix ${failures === 1 ? 'it' : 'them'} before deploying`,
  );
  return failures === 0 ? 0 : 1;
}

function printConfiguration(config: GatewayConfig, env: Env, write: (line: string) => void): void {
  write('');
  write('Effective configuration');
  const width = Math.max(...CONFIG_VARIABLES.map((v) => v.name.length));
  for (const variable of CONFIG_VARIABLES) {
    const value = variable.show(config);
    const given = isSet(env[variable.name]) || isSet(env[`${variable.name}_FILE`]);
    const source = isSet(env[`${variable.name}_FILE`]) ? ' (from file)' : given ? '' : ' (default)';
    write(`  ${variable.name.padEnd(width)}  ${value ?? '-'}${value === undefined ? '' : source}`);
  }
  write('');
  write(`Routes (${config.routesFile})`);
  if (config.routes.length === 0) write('  none: nothing is proxied under /api');
  for (const route of config.routes) {
    const upstream = new URL(route.target.href);
    const attributes = [
      `token=${route.token}`,
      route.methods ? `methods=${route.methods.join(',')}` : 'methods=any',
      `websocket=${route.websocket ? 'yes' : 'no'}`,
      `timeout=${route.timeoutMs}ms`,
      ...(route.scope ? [`scope="${route.scope}"`] : []),
      ...(route.resource ? [`resource=${route.resource}`] : []),
      ...(route.audience ? [`audience=${route.audience}`] : []),
      ...(route.require ? [`require=${describeRequirement(route.require)}`] : []),
      ...(route.stepUp
        ? [`stepUp=${[route.stepUp.acr !== undefined ? `acr:${route.stepUp.acr}` : '', route.stepUp.maxAge !== undefined ? `maxAge:${route.stepUp.maxAge}s` : ''].filter(Boolean).join(',')}`]
        : []),
    ];
    write(`  ${route.prefix} -> ${upstream.origin}${route.rewrite ?? route.prefix}  ${attributes.join('  ')}`);
  }
}

/** Which claims a route's rule looks at (not the values it wants: who may pass is no business of a check's output) and the acr values it allows. */
function describeRequirement(requirement: RouteRequirement): string {
  const parts = [...(requirement.claims ? [`claims(${Object.keys(requirement.claims).join(',')})`] : []), ...(requirement.acr ? [`acr(${requirement.acr.join(',')})`] : [])];
  return parts.join('+');
}

async function checkIdp(
  issuer: URL,
  clientId: string,
  config: GatewayConfig | undefined,
  fapi2: Fapi2Expectations | undefined,
  timeoutMs: number,
  report: (level: Level, text: string) => void,
): Promise<void> {
  let metadata: ProviderMetadata;
  const startedAt = performance.now();
  try {
    metadata = await discoverOnce(issuer, clientId, timeoutMs);
  } catch (err) {
    report('FAIL', `BFF_ISSUER_URL: OpenID provider discovery at ${issuer.href} failed: ${reasonOf(err)}`);
    return;
  }
  const ms = Math.round(performance.now() - startedAt);
  const features = [
    metadata.pushed_authorization_request_endpoint ? 'PAR' : undefined,
    metadata.end_session_endpoint ? 'end-session' : undefined,
    metadata.revocation_endpoint ? 'revocation' : undefined,
    metadata.backchannel_logout_supported ? 'back-channel logout' : undefined,
  ].filter(Boolean);
  report('ok', `BFF_ISSUER_URL: discovery answered in ${ms} ms (issuer ${metadata.issuer}; ${features.join(', ') || 'no optional endpoints'})`);
  const methods = metadata.code_challenge_methods_supported;
  // Under BFF_PROFILE=fapi2, reportFapi2 names a missing S256 with the profile's other requirements.
  if (fapi2) reportFapi2(metadata, fapi2, config, report);
  else if (methods && !methods.includes('S256')) report('FAIL', 'BFF_ISSUER_URL: the provider does not support PKCE with S256, which the gateway always uses');
  if (!metadata.end_session_endpoint) report('warn', "BFF_ISSUER_URL: the provider has no end_session_endpoint: logout ends the gateway session but not the provider's");
  if (!config) return;
  const authMethods = metadata.token_endpoint_auth_methods_supported;
  if (authMethods && !authMethods.includes(config.clientAuthMethod)) {
    report('FAIL', `BFF_CLIENT_AUTH_METHOD: ${config.clientAuthMethod} is not among the provider's token_endpoint_auth_methods_supported (${authMethods.join(', ')})`);
  } else {
    reportCredentials(config, metadata, await probeClientCredentials(config, metadata, timeoutMs), report);
  }
  const scopes = metadata.scopes_supported;
  if (scopes) {
    const missing = config.scopes.split(' ').filter((s) => !scopes.includes(s));
    if (missing.length > 0) report('warn', `BFF_SCOPES: the provider does not advertise ${missing.join(', ')} (it may still accept ${missing.length === 1 ? 'it' : 'them'})`);
  }
}

/** The client credentials as the token endpoint judged them, naming the variable to fix. */
function reportCredentials(config: GatewayConfig, metadata: ProviderMetadata, verdict: CredentialsVerdict, report: (level: Level, text: string) => void): void {
  const variable = config.clientAuthMethod === 'private_key_jwt' ? 'BFF_CLIENT_PRIVATE_KEY' : 'BFF_CLIENT_SECRET';
  const endpoint = metadata.token_endpoint ?? '(none advertised)';
  const quoted = (description: string | undefined): string => (description ? `: "${description}"` : '');
  switch (verdict.kind) {
    case 'accepted':
      report(
        'ok',
        `${variable}: the token endpoint accepted the client credentials (${config.clientAuthMethod}; a code grant for a code that cannot exist was refused with invalid_grant, and nothing was issued)`,
      );
      return;
    case 'refused':
      report(
        'FAIL',
        `${variable}: the token endpoint ${endpoint} refused the client credentials (${verdict.error}${verdict.status === undefined ? '' : `, HTTP ${verdict.status}`}${quoted(verdict.description)}); ` +
          `check BFF_CLIENT_ID (${config.clientId}), ${variable} and BFF_CLIENT_AUTH_METHOD (${config.clientAuthMethod}), and that the client may use the authorization_code grant`,
      );
      return;
    case 'unreachable':
      report('FAIL', `BFF_ISSUER_URL: the token endpoint ${endpoint} did not answer the client credentials probe: ${verdict.reason}`);
      return;
    case 'unusable':
      report('FAIL', `${variable}: ${verdict.reason}`);
      return;
    case 'inconclusive':
      report(
        'warn',
        `${variable}: the token endpoint ${endpoint} answered the client credentials probe with ${verdict.reason}${quoted(verdict.description)}, which proves neither that it accepts the credentials nor that it refuses them`,
      );
  }
}

async function checkRedis(url: string, timeoutMs: number, report: (level: Level, text: string) => void): Promise<void> {
  const shown = maskUrl(url);
  const redis = createClient({ url, disableOfflineQueue: true, socket: { connectTimeout: timeoutMs, reconnectStrategy: false } });
  // Connection errors are reported from connect() below; the event would otherwise crash the process.
  redis.on('error', () => undefined);
  const startedAt = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error('no answer'), { code: 'ETIMEDOUT' })), timeoutMs);
    });
    await Promise.race([redis.connect().then(() => redis.ping()), timeout]);
    report('ok', `BFF_REDIS_URL: ${shown} answered PING in ${Math.round(performance.now() - startedAt)} ms`);
  } catch (err) {
    report('FAIL', `BFF_REDIS_URL: ${shown} PING failed: ${scrub(reasonOf(err), url)}`);
  } finally {
    clearTimeout(timer);
    redis.destroy();
  }
}

/**
 * A cluster or Sentinel-managed master, through the gateway's own connection code: PING
 * once the connection is ready (a cluster must have discovered its slots, a Sentinel
 * client its master).
 */
async function checkRedisTopology(topology: Exclude<RedisTopology, { kind: 'single' }>, timeoutMs: number, report: (level: Level, text: string) => void): Promise<void> {
  const name = topology.kind === 'cluster' ? 'BFF_REDIS_CLUSTER_NODES' : 'BFF_REDIS_SENTINELS';
  const what = topology.kind === 'cluster' ? `cluster (${topology.nodes.length} seed node${topology.nodes.length === 1 ? '' : 's'})` : `Sentinel master "${topology.name}"`;
  const { client } = createRedisConnection(topology, pino({ level: 'silent' }));
  const startedAt = performance.now();
  try {
    while (!client.isReady) {
      if (performance.now() - startedAt > timeoutMs) throw Object.assign(new Error('not ready'), { code: 'ETIMEDOUT' });
      await delay(25);
    }
    await Promise.race([client.ping(), delay(timeoutMs).then(() => Promise.reject(Object.assign(new Error('no answer'), { code: 'ETIMEDOUT' })))]);
    report('ok', `${name}: the ${what} answered PING in ${Math.round(performance.now() - startedAt)} ms`);
  } catch (err) {
    report('FAIL', `${name}: the ${what} did not answer: ${scrubAll(reasonOf(err), topology)}`);
  } finally {
    // Never wait long for a connection that never came up.
    await Promise.race([client.close().catch(() => undefined), delay(1000)]);
  }
}

function scrubAll(text: string, topology: Exclude<RedisTopology, { kind: 'single' }>): string {
  if (topology.kind === 'sentinel') return topology.password ? text.split(topology.password).join('********') : text;
  return topology.nodes.reduce((scrubbed, url) => scrub(scrubbed, url), text);
}

/** Error texts may quote the URL; its password must not reach the report. */
function scrub(text: string, url: string): string {
  let password: string;
  try {
    password = decodeURIComponent(new URL(url).password);
  } catch {
    return text;
  }
  return password ? text.split(password).join('********') : text;
}

function httpUrl(text: string | undefined): URL | undefined {
  if (!text) return undefined;
  try {
    const url = new URL(text.trim());
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : undefined;
  } catch {
    return undefined;
  }
}

function isSet(value: string | undefined): boolean {
  return value !== undefined && value.trim() !== '';
}
