import { describeRate } from './abuse-limits.ts';
import type { Env } from './env-file.ts';
import { SECRET_VARIABLES } from './secrets.ts';
import type { GatewayConfig } from './types.ts';

const MASK = '********';

export interface VariableDescription {
  name: string;
  /** The default as the README's configuration table states it (Markdown); `--help` prints it. */
  default: string;
  /** The effective value as `--check` prints it: secrets masked, undefined when unset and without a default. */
  show(config: GatewayConfig): string | undefined;
}

/**
 * Every variable `loadConfig` reads, in the order `--check` prints them.
 * A unit test keeps this list, load.ts, the README table and .env.example
 * in step: a variable added to one and not the others fails the build.
 */
export const CONFIG_VARIABLES: readonly VariableDescription[] = [
  { name: 'BFF_PUBLIC_URL', default: 'required', show: (c) => c.publicUrl.origin },
  { name: 'BFF_ISSUER_URL', default: 'required', show: (c) => c.issuerUrl.href },
  { name: 'BFF_ALLOW_INSECURE_ISSUER', default: '`false`', show: (c) => String(c.allowInsecureIssuer) },
  { name: 'BFF_CLIENT_ID', default: 'required', show: (c) => c.clientId },
  { name: 'BFF_CLIENT_AUTH_METHOD', default: '`client_secret_basic`', show: (c) => c.clientAuthMethod },
  { name: 'BFF_CLIENT_SECRET', default: 'required unless `private_key_jwt`', show: (c) => (c.clientSecret === undefined ? undefined : MASK) },
  { name: 'BFF_CLIENT_PRIVATE_KEY', default: '—', show: (c) => (c.clientPrivateKey === undefined ? undefined : `${MASK} (PEM private key)`) },
  { name: 'BFF_DPOP', default: '`false`', show: (c) => String(c.dpop.enabled) },
  { name: 'BFF_DPOP_ALG', default: '`ES256`', show: (c) => c.dpop.alg },
  { name: 'BFF_PROFILE', default: '`none`', show: (c) => c.profile },
  { name: 'BFF_SESSION_SECRETS', default: 'required', show: (c) => `${MASK} (${c.sessionSecrets.length} secret${c.sessionSecrets.length === 1 ? '' : 's'}, the first one active)` },
  { name: 'BFF_PORT', default: '`3000`', show: (c) => String(c.port) },
  { name: 'BFF_ADMIN_PORT', default: '`9090`', show: (c) => String(c.adminPort) },
  { name: 'BFF_ADMIN_HOST', default: 'all interfaces', show: (c) => c.adminHost ?? 'all interfaces' },
  { name: 'BFF_REDIS_URL', default: '—', show: (c) => (c.redis === undefined ? 'unset: sessions in memory, ONE instance only' : c.redisUrl === undefined ? undefined : maskUrl(c.redisUrl)) },
  { name: 'BFF_REDIS_CLUSTER_NODES', default: '—', show: (c) => (c.redis?.kind === 'cluster' ? c.redis.nodes.map(maskUrl).join(',') : undefined) },
  { name: 'BFF_REDIS_SENTINELS', default: '—', show: (c) => (c.redis?.kind === 'sentinel' ? c.redis.sentinels.map((n) => `${n.host}:${n.port}`).join(',') : undefined) },
  { name: 'BFF_REDIS_SENTINEL_NAME', default: '—', show: (c) => (c.redis?.kind === 'sentinel' ? c.redis.name : undefined) },
  { name: 'BFF_REDIS_USERNAME', default: '—', show: (c) => (c.redis?.kind === 'sentinel' ? c.redis.username : undefined) },
  { name: 'BFF_REDIS_PASSWORD', default: '—', show: (c) => (c.redis?.kind === 'sentinel' && c.redis.password !== undefined ? MASK : undefined) },
  { name: 'BFF_ROUTES_FILE', default: '`config/routes.json`', show: (c) => c.routesFile },
  { name: 'BFF_SCOPES', default: '`openid profile email offline_access`', show: (c) => c.scopes },
  { name: 'BFF_COOKIE_NAME', default: '`__Host-bff` on https, `bff` on http', show: (c) => c.cookieName },
  { name: 'BFF_SAMESITE', default: '`strict`', show: (c) => c.sameSite },
  { name: 'BFF_SESSION_IDLE_TIMEOUT', default: '`30m`', show: (c) => `${c.sessionIdleTimeoutSec}s` },
  { name: 'BFF_SESSION_ABSOLUTE_TIMEOUT', default: '`12h`', show: (c) => `${c.sessionAbsoluteTimeoutSec}s` },
  { name: 'BFF_CSRF_HEADER', default: '`x-csrf`', show: (c) => c.csrfHeader },
  { name: 'BFF_REFRESH_SKEW', default: '`30`', show: (c) => `${c.refreshSkewSec}s` },
  { name: 'BFF_POST_LOGOUT_REDIRECT_URL', default: '`BFF_PUBLIC_URL` + `/`', show: (c) => c.postLogoutRedirectUrl },
  { name: 'BFF_ERROR_URL', default: '—', show: (c) => c.errorUrl },
  { name: 'BFF_TRUST_PROXY', default: '`false`', show: (c) => String(c.trustProxy) },
  { name: 'BFF_STATIC_DIR', default: '—', show: (c) => c.staticDir },
  { name: 'BFF_SPA_DEV_URL', default: '—', show: (c) => c.spaDevUrl?.href },
  { name: 'BFF_CSP', default: 'same-origin only, no inline script', show: (c) => c.contentSecurityPolicy },
  { name: 'BFF_LOG_LEVEL', default: '`info`', show: (c) => c.logLevel },
  { name: 'BFF_LOG_SUB', default: '`false`', show: (c) => String(c.logSub) },
  { name: 'BFF_WORKERS', default: '`1`', show: (c) => (c.workers === 1 ? '1 (one process)' : `${c.workers} worker processes`) },
  { name: 'BFF_SHUTDOWN_TIMEOUT', default: '`25s`', show: (c) => `${c.shutdownTimeoutSec}s` },
  { name: 'BFF_RATE_LIMIT_LOGIN', default: '`30/1m`', show: (c) => describeRate(c.rateLimits.login) },
  { name: 'BFF_RATE_LIMIT_CALLBACK', default: '`30/1m`', show: (c) => describeRate(c.rateLimits.callback) },
  { name: 'BFF_MAX_HEADER_SIZE', default: '`16384`', show: (c) => `${c.connectionLimits.maxHeaderBytes} bytes` },
  { name: 'BFF_MAX_URL_LENGTH', default: '`8192`', show: (c) => `${c.connectionLimits.maxUrlLength} bytes` },
  { name: 'BFF_HEADERS_TIMEOUT', default: '`20s`', show: (c) => `${c.connectionLimits.headersTimeoutMs / 1000}s` },
  { name: 'BFF_BODY_IDLE_TIMEOUT', default: '`60s`', show: (c) => `${c.connectionLimits.bodyIdleTimeoutMs / 1000}s` },
  { name: 'BFF_KEEPALIVE_TIMEOUT', default: '`65s`', show: (c) => `${c.connectionLimits.keepAliveTimeoutMs / 1000}s` },
  { name: 'BFF_PROXY_BUFFER_BYTES', default: '`65536`', show: (c) => `${c.proxyLimits.bufferBytes} bytes` },
  { name: 'BFF_PROXY_MAX_STREAMS_PER_CLIENT', default: '`16`', show: (c) => String(c.proxyLimits.maxStreamsPerClient) },
];

/** Read before every other variable (and only from the real environment); not part of the configuration itself. */
export const ENV_FILE_VARIABLE = { name: 'BFF_ENV_FILE', default: '`.env` if present' } as const;

/** Every `BFF_*` name the gateway reads: the variables, the env file's name and the `_FILE` form of each secret. */
export const KNOWN_VARIABLES: ReadonlySet<string> = new Set([...CONFIG_VARIABLES.map((v) => v.name), ENV_FILE_VARIABLE.name, ...SECRET_VARIABLES.map((name) => `${name}_FILE`)]);

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
