import { describeRate } from './abuse-limits.ts';
import type { Env } from './env-file.ts';
import { SECRET_VARIABLES } from './secrets.ts';
import type { GatewayConfig } from './types.ts';

const MASK = '********';

export interface VariableDescription {
  name: string;
  /** The effective value as `--check` prints it: secrets masked, undefined when unset and without a default. */
  show(config: GatewayConfig): string | undefined;
}

/**
 * Every variable `loadConfig` reads, in the order `--check` prints them.
 * A unit test keeps this list, load.ts, the README table and .env.example
 * in step: a variable added to one and not the others fails the build.
 */
export const CONFIG_VARIABLES: readonly VariableDescription[] = [
  { name: 'BFF_PUBLIC_URL', show: (c) => c.publicUrl.origin },
  { name: 'BFF_ISSUER_URL', show: (c) => c.issuerUrl.href },
  { name: 'BFF_ALLOW_INSECURE_ISSUER', show: (c) => String(c.allowInsecureIssuer) },
  { name: 'BFF_CLIENT_ID', show: (c) => c.clientId },
  { name: 'BFF_CLIENT_AUTH_METHOD', show: (c) => c.clientAuthMethod },
  { name: 'BFF_CLIENT_SECRET', show: (c) => (c.clientSecret === undefined ? undefined : MASK) },
  { name: 'BFF_CLIENT_PRIVATE_KEY', show: (c) => (c.clientPrivateKey === undefined ? undefined : `${MASK} (PEM private key)`) },
  { name: 'BFF_SESSION_SECRETS', show: (c) => `${MASK} (${c.sessionSecrets.length} secret${c.sessionSecrets.length === 1 ? '' : 's'}, the first one active)` },
  { name: 'BFF_PORT', show: (c) => String(c.port) },
  { name: 'BFF_ADMIN_PORT', show: (c) => String(c.adminPort) },
  { name: 'BFF_ADMIN_HOST', show: (c) => c.adminHost ?? 'all interfaces' },
  { name: 'BFF_REDIS_URL', show: (c) => (c.redis === undefined ? 'unset: sessions in memory, ONE instance only' : c.redisUrl === undefined ? undefined : maskUrl(c.redisUrl)) },
  { name: 'BFF_REDIS_CLUSTER_NODES', show: (c) => (c.redis?.kind === 'cluster' ? c.redis.nodes.map(maskUrl).join(',') : undefined) },
  { name: 'BFF_REDIS_SENTINELS', show: (c) => (c.redis?.kind === 'sentinel' ? c.redis.sentinels.map((n) => `${n.host}:${n.port}`).join(',') : undefined) },
  { name: 'BFF_REDIS_SENTINEL_NAME', show: (c) => (c.redis?.kind === 'sentinel' ? c.redis.name : undefined) },
  { name: 'BFF_REDIS_USERNAME', show: (c) => (c.redis?.kind === 'sentinel' ? c.redis.username : undefined) },
  { name: 'BFF_REDIS_PASSWORD', show: (c) => (c.redis?.kind === 'sentinel' && c.redis.password !== undefined ? MASK : undefined) },
  { name: 'BFF_ROUTES_FILE', show: (c) => c.routesFile },
  { name: 'BFF_SCOPES', show: (c) => c.scopes },
  { name: 'BFF_COOKIE_NAME', show: (c) => c.cookieName },
  { name: 'BFF_SAMESITE', show: (c) => c.sameSite },
  { name: 'BFF_SESSION_IDLE_TIMEOUT', show: (c) => `${c.sessionIdleTimeoutSec}s` },
  { name: 'BFF_SESSION_ABSOLUTE_TIMEOUT', show: (c) => `${c.sessionAbsoluteTimeoutSec}s` },
  { name: 'BFF_CSRF_HEADER', show: (c) => c.csrfHeader },
  { name: 'BFF_REFRESH_SKEW', show: (c) => `${c.refreshSkewSec}s` },
  { name: 'BFF_POST_LOGOUT_REDIRECT_URL', show: (c) => c.postLogoutRedirectUrl },
  { name: 'BFF_ERROR_URL', show: (c) => c.errorUrl },
  { name: 'BFF_TRUST_PROXY', show: (c) => String(c.trustProxy) },
  { name: 'BFF_STATIC_DIR', show: (c) => c.staticDir },
  { name: 'BFF_SPA_DEV_URL', show: (c) => c.spaDevUrl?.href },
  { name: 'BFF_CSP', show: (c) => c.contentSecurityPolicy },
  { name: 'BFF_LOG_LEVEL', show: (c) => c.logLevel },
  { name: 'BFF_LOG_SUB', show: (c) => String(c.logSub) },
  { name: 'BFF_SHUTDOWN_TIMEOUT', show: (c) => `${c.shutdownTimeoutSec}s` },
  { name: 'BFF_RATE_LIMIT_LOGIN', show: (c) => describeRate(c.rateLimits.login) },
  { name: 'BFF_RATE_LIMIT_CALLBACK', show: (c) => describeRate(c.rateLimits.callback) },
  { name: 'BFF_MAX_HEADER_SIZE', show: (c) => `${c.connectionLimits.maxHeaderBytes} bytes` },
  { name: 'BFF_MAX_URL_LENGTH', show: (c) => `${c.connectionLimits.maxUrlLength} bytes` },
  { name: 'BFF_HEADERS_TIMEOUT', show: (c) => `${c.connectionLimits.headersTimeoutMs / 1000}s` },
  { name: 'BFF_BODY_IDLE_TIMEOUT', show: (c) => `${c.connectionLimits.bodyIdleTimeoutMs / 1000}s` },
  { name: 'BFF_KEEPALIVE_TIMEOUT', show: (c) => `${c.connectionLimits.keepAliveTimeoutMs / 1000}s` },
  { name: 'BFF_PROXY_BUFFER_BYTES', show: (c) => `${c.proxyLimits.bufferBytes} bytes` },
  { name: 'BFF_PROXY_MAX_STREAMS_PER_CLIENT', show: (c) => String(c.proxyLimits.maxStreamsPerClient) },
];

/** Every `BFF_*` name the gateway reads: the variables, the env file's name and the `_FILE` form of each secret. */
export const KNOWN_VARIABLES: ReadonlySet<string> = new Set([
  ...CONFIG_VARIABLES.map((v) => v.name),
  'BFF_ENV_FILE',
  ...SECRET_VARIABLES.map((name) => `${name}_FILE`),
]);

export interface UnknownVariable {
  name: string;
  /** The known variable it most likely means, if one is close enough. */
  suggestion?: string;
}

/** `BFF_*` variables the gateway does not read, usually a typo that silently leaves a default in place. */
export function unknownVariables(env: Env): UnknownVariable[] {
  return Object.keys(env)
    .filter((name) => name.startsWith('BFF_') && !KNOWN_VARIABLES.has(name))
    .sort()
    .map((name) => {
      const suggestion = closest(name);
      return suggestion ? { name, suggestion } : { name };
    });
}

export function describeUnknown(variable: UnknownVariable): string {
  return `${variable.name}: not a variable bff-gateway knows (it is ignored)${variable.suggestion ? `; did you mean ${variable.suggestion}?` : ''}`;
}

/** A redis:// URL with its password masked; it is a secret only because of the password. */
export function maskUrl(text: string): string {
  try {
    const url = new URL(text);
    if (url.password) url.password = MASK;
    return url.href;
  } catch {
    return MASK;
  }
}

function closest(name: string): string | undefined {
  const upper = name.toUpperCase();
  let best: { name: string; distance: number } | undefined;
  for (const known of KNOWN_VARIABLES) {
    const distance = levenshtein(upper, known);
    if (!best || distance < best.distance) best = { name: known, distance };
  }
  if (!best) return undefined;
  const stem = upper.slice(4);
  const contains = stem.length >= 4 && [...KNOWN_VARIABLES].find((known) => known.slice(4).startsWith(stem) || stem.startsWith(known.slice(4)));
  if (best.distance <= Math.max(2, Math.floor(upper.length / 5))) return best.name;
  return contains || undefined;
}

function levenshtein(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
