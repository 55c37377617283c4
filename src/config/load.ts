import { resolve } from 'node:path';
import { z } from 'zod';
import { readAbuseLimits } from './abuse-limits.ts';
import { parseDurationSeconds } from './duration.ts';
import { withEnvFile, type Env } from './env-file.ts';
import { fapi2ConfigProblems } from './fapi2.ts';
import { isRedisUrl, redisTopology } from './redis-topology.ts';
import { loadRoutesFile } from './routes.ts';
import { resolveSecretFiles } from './secrets.ts';
import { readWorkers } from './workers.ts';
import { CLIENT_AUTH_METHODS, DPOP_ALGS, SECURITY_PROFILES, type ClientAuthMethod, type DpopAlg, type GatewayConfig, type SecurityProfile } from './types.ts';
import { isAbsoluteHttp, isListenHost, parseTrustProxy, parseUrl } from './values.ts';

const MIN_SECRET_BYTES = 32;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Every problem found in the configuration, each naming its variable. Exit code 2. */
export class ConfigError extends Error {
  readonly code = 'config_invalid';
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.problems = problems;
  }
}

const port = z.coerce.number().int().min(0).max(65535);
const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' }).transform((v) => v === 'true' || v === '1' || v === 'yes');

/**
 * Reads the whole configuration from the environment (plus env file, `*_FILE`
 * secrets and the routes file) and reports every problem at once.
 */
export function loadConfig(rawEnv: Env, cwd = process.cwd()): GatewayConfig {
  const problems: string[] = [];
  let env: Env = rawEnv;
  try {
    env = withEnvFile(rawEnv, cwd).env;
  } catch (err) {
    problems.push(err instanceof Error ? err.message : String(err));
  }
  const secrets = resolveSecretFiles(env, cwd);
  env = secrets.env;
  problems.push(...secrets.problems);

  const get = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  };
  /** For keyword-valued variables, where `Strict` and `strict` mean the same. */
  const lower = <T>(schema: z.ZodType<T, string>) =>
    z
      .string()
      .transform((v) => v.toLowerCase())
      .pipe(schema);
  /** Runs a zod schema over one variable; a failure is reported by name, never with the value. */
  function read<T>(name: string, schema: z.ZodType<T>, fallback: T): T;
  function read<T>(name: string, schema: z.ZodType<T>): T | undefined;
  function read<T>(name: string, schema: z.ZodType<T>, fallback?: T): T | undefined {
    const value = get(name);
    if (value === undefined) return fallback;
    const parsed = schema.safeParse(value);
    if (parsed.success) return parsed.data;
    problems.push(`${name}: ${parsed.error.issues[0]?.message ?? 'invalid value'}`);
    return fallback;
  }
  function required(name: string, hint: string): string | undefined {
    const value = get(name);
    if (value === undefined && !secrets.unreadable.has(name)) problems.push(`${name}: required (${hint})`);
    return value;
  }
  function duration(name: string, fallbackSec: number): number {
    const value = get(name);
    if (value === undefined) return fallbackSec;
    const seconds = parseDurationSeconds(value);
    if (seconds === undefined || seconds < 1) {
      problems.push(`${name}: must be a positive duration such as 1800, 30m, 12h or 7d`);
      return fallbackSec;
    }
    return seconds;
  }

  const allowInsecureIssuer = read('BFF_ALLOW_INSECURE_ISSUER', lower(bool), false);

  const publicUrlText = required('BFF_PUBLIC_URL', 'the URL browsers use to reach the gateway, e.g. https://app.example.com');
  let publicUrl: URL | undefined;
  if (publicUrlText !== undefined) {
    publicUrl = parseUrl(publicUrlText);
    if (!publicUrl || (publicUrl.protocol !== 'https:' && publicUrl.protocol !== 'http:')) {
      problems.push('BFF_PUBLIC_URL: must be an absolute http:// or https:// URL');
      publicUrl = undefined;
    } else if (publicUrl.pathname !== '/' || publicUrl.search || publicUrl.hash || publicUrl.username) {
      problems.push('BFF_PUBLIC_URL: must be an origin only (no path, query, fragment or credentials): the gateway owns "/" so that its cookie can be a __Host- cookie');
      publicUrl = undefined;
    }
  }

  const issuerText = required('BFF_ISSUER_URL', "the OpenID provider's issuer URL");
  let issuerUrl: URL | undefined;
  if (issuerText !== undefined) {
    issuerUrl = parseUrl(issuerText);
    if (!issuerUrl || (issuerUrl.protocol !== 'https:' && issuerUrl.protocol !== 'http:')) {
      problems.push('BFF_ISSUER_URL: must be an absolute https:// URL');
      issuerUrl = undefined;
    } else if (issuerUrl.protocol === 'http:' && !allowInsecureIssuer) {
      problems.push('BFF_ISSUER_URL: is http://; tokens would cross the network in clear text. Use https://, or set BFF_ALLOW_INSECURE_ISSUER=true for local development only');
    }
  }

  const clientId = required('BFF_CLIENT_ID', 'the client id registered at the OpenID provider');
  const clientAuthMethod = read(
    'BFF_CLIENT_AUTH_METHOD',
    lower(z.enum(CLIENT_AUTH_METHODS, { message: `must be one of ${CLIENT_AUTH_METHODS.join(', ')}` })),
    'client_secret_basic' as ClientAuthMethod,
  );
  const clientSecret = get('BFF_CLIENT_SECRET');
  const clientPrivateKey = get('BFF_CLIENT_PRIVATE_KEY');
  if (clientAuthMethod === 'private_key_jwt') {
    if (!clientPrivateKey) {
      if (!secrets.unreadable.has('BFF_CLIENT_PRIVATE_KEY'))
        problems.push('BFF_CLIENT_PRIVATE_KEY: required with BFF_CLIENT_AUTH_METHOD=private_key_jwt (a PKCS#8 PEM private key, or BFF_CLIENT_PRIVATE_KEY_FILE)');
    } else if (!clientPrivateKey.includes('-----BEGIN PRIVATE KEY-----')) problems.push('BFF_CLIENT_PRIVATE_KEY: must be a PKCS#8 PEM private key (-----BEGIN PRIVATE KEY-----)');
  } else if (!clientSecret && !secrets.unreadable.has('BFF_CLIENT_SECRET')) {
    problems.push(`BFF_CLIENT_SECRET: required with BFF_CLIENT_AUTH_METHOD=${clientAuthMethod} (or BFF_CLIENT_SECRET_FILE)`);
  }

  const dpop = { enabled: read('BFF_DPOP', lower(bool), false), alg: read('BFF_DPOP_ALG', z.enum(DPOP_ALGS, { message: `must be one of ${DPOP_ALGS.join(', ')}` }), 'ES256' as DpopAlg) };
  const profile = read('BFF_PROFILE', lower(z.enum(SECURITY_PROFILES, { message: `must be one of ${SECURITY_PROFILES.join(', ')}` })), 'none' as SecurityProfile);

  const sessionSecretsText = required('BFF_SESSION_SECRETS', `comma-separated secrets of at least ${MIN_SECRET_BYTES} bytes each; the first one is active`);
  const sessionSecrets = (sessionSecretsText ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (sessionSecretsText !== undefined) {
    if (sessionSecrets.length === 0) problems.push('BFF_SESSION_SECRETS: no secret given');
    sessionSecrets.forEach((secret, i) => {
      const bytes = Buffer.byteLength(secret, 'utf8');
      if (bytes < MIN_SECRET_BYTES) problems.push(`BFF_SESSION_SECRETS: entry ${i + 1} is ${bytes} bytes; each must be at least ${MIN_SECRET_BYTES} bytes (e.g. openssl rand -base64 48)`);
    });
    if (new Set(sessionSecrets).size !== sessionSecrets.length) problems.push('BFF_SESSION_SECRETS: the same secret is listed twice');
  }

  const mainPort = read('BFF_PORT', port, 3000);
  const adminPort = read('BFF_ADMIN_PORT', port, 9090);
  if (mainPort === adminPort && mainPort !== 0) problems.push('BFF_ADMIN_PORT: must differ from BFF_PORT');
  const adminHost = read(
    'BFF_ADMIN_HOST',
    z.string().refine(isListenHost, 'must be an IP address (127.0.0.1, ::1, 0.0.0.0) or a hostname (localhost), without a port or brackets; unset listens on all interfaces'),
  );

  const redisUrl = get('BFF_REDIS_URL');
  if (redisUrl !== undefined && !isRedisUrl(redisUrl)) problems.push('BFF_REDIS_URL: must be a redis:// or rediss:// URL');
  const redis = redisTopology(get, redisUrl, problems);
  const workers = readWorkers(get, problems, redis !== undefined);

  const scopes = (get('BFF_SCOPES') ?? 'openid profile email offline_access').split(/[\s,]+/).filter(Boolean);
  if (!scopes.includes('openid')) problems.push('BFF_SCOPES: must include "openid"');

  const secure = publicUrl?.protocol === 'https:';
  const cookieName = read('BFF_COOKIE_NAME', z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be a valid cookie name'), secure ? '__Host-bff' : 'bff');
  if (cookieName.startsWith('__Host-') && !secure) problems.push('BFF_COOKIE_NAME: a __Host- cookie needs an https BFF_PUBLIC_URL');
  if (cookieName.startsWith('__Secure-') && !secure) problems.push('BFF_COOKIE_NAME: a __Secure- cookie needs an https BFF_PUBLIC_URL');

  const sameSite = read('BFF_SAMESITE', lower(z.enum(['strict', 'lax'], { message: 'must be strict or lax (none would let other sites send the cookie)' })), 'strict');
  const idle = duration('BFF_SESSION_IDLE_TIMEOUT', 30 * 60);
  const absolute = duration('BFF_SESSION_ABSOLUTE_TIMEOUT', 12 * 3600);
  if (idle > absolute) problems.push('BFF_SESSION_IDLE_TIMEOUT: must not be longer than BFF_SESSION_ABSOLUTE_TIMEOUT');
  const csrfHeader = read(
    'BFF_CSRF_HEADER',
    z
      .string()
      .regex(/^[A-Za-z0-9-]+$/, 'must be a header name')
      .transform((h) => h.toLowerCase()),
    'x-csrf',
  );
  const refreshSkewSec = read('BFF_REFRESH_SKEW', z.coerce.number().int().min(0).max(3600, 'must be at most 3600 seconds'), 30);

  const defaultPostLogout = publicUrl ? new URL('/', publicUrl).href : '';
  const postLogoutRedirectUrl = read(
    'BFF_POST_LOGOUT_REDIRECT_URL',
    z.string().refine((v) => isAbsoluteHttp(v), 'must be an absolute http(s) URL'),
    defaultPostLogout,
  );
  const errorUrl = read(
    'BFF_ERROR_URL',
    z.string().refine((v) => (v.startsWith('/') && !v.startsWith('//') ? true : isAbsoluteHttp(v)), 'must be a path ("/login-error") or an absolute http(s) URL'),
  );
  const trustProxy = read('BFF_TRUST_PROXY', z.string().transform(parseTrustProxy), false as GatewayConfig['trustProxy']);
  const staticDirText = get('BFF_STATIC_DIR');
  const spaDevUrl = read(
    'BFF_SPA_DEV_URL',
    z
      .string()
      .refine((v) => isAbsoluteHttp(v), 'must be an absolute http(s) URL of the SPA dev server')
      .transform((v) => new URL(v)),
  );
  if (staticDirText !== undefined && spaDevUrl !== undefined) problems.push('BFF_SPA_DEV_URL: set either BFF_STATIC_DIR (built SPA) or BFF_SPA_DEV_URL (dev server), not both');
  const contentSecurityPolicy = read(
    'BFF_CSP',
    z.string().refine((v) => !/[\r\n]/.test(v), 'must be one line'),
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
  );
  const logSub = read('BFF_LOG_SUB', lower(bool), false);
  const shutdownTimeoutSec = duration('BFF_SHUTDOWN_TIMEOUT', 25);
  const abuseLimits = readAbuseLimits(get, problems);
  const logLevel = read('BFF_LOG_LEVEL', lower(z.enum(LOG_LEVELS, { message: `must be one of ${LOG_LEVELS.join(', ')}` })), 'info');

  const routesFile = resolve(cwd, get('BFF_ROUTES_FILE') ?? 'config/routes.json');
  const routes = loadRoutesFile(routesFile);
  problems.push(...routes.problems);

  const clientSecretSet = clientSecret !== undefined || secrets.unreadable.has('BFF_CLIENT_SECRET');
  if (profile === 'fapi2') problems.push(...fapi2ConfigProblems({ issuerUrl, publicUrl, allowInsecureIssuer, clientAuthMethod, clientSecretSet, clientPrivateKey, dpop }));
  if (problems.length > 0 || !publicUrl || !issuerUrl || !clientId) throw new ConfigError(problems);

  return {
    publicUrl,
    publicOrigin: publicUrl.origin,
    secure,
    port: mainPort,
    adminPort,
    ...(adminHost !== undefined ? { adminHost } : {}),
    issuerUrl,
    allowInsecureIssuer,
    clientId,
    ...(clientSecret !== undefined ? { clientSecret } : {}),
    clientAuthMethod,
    ...(clientPrivateKey !== undefined ? { clientPrivateKey } : {}),
    dpop,
    profile,
    redirectUri: new URL('/auth/callback', publicUrl).href,
    scopes: scopes.join(' '),
    sessionSecrets,
    ...(redisUrl !== undefined ? { redisUrl } : {}),
    ...(redis !== undefined ? { redis } : {}),
    routesFile,
    routes: routes.routes,
    cookieName,
    txCookieName: `${cookieName}-tx`,
    sameSite,
    sessionIdleTimeoutSec: idle,
    sessionAbsoluteTimeoutSec: absolute,
    csrfHeader,
    refreshSkewSec,
    postLogoutRedirectUrl,
    ...(errorUrl !== undefined ? { errorUrl } : {}),
    trustProxy,
    ...(staticDirText !== undefined ? { staticDir: resolve(cwd, staticDirText) } : {}),
    ...(spaDevUrl !== undefined ? { spaDevUrl } : {}),
    contentSecurityPolicy,
    logLevel,
    logSub,
    shutdownTimeoutSec,
    workers,
    ...abuseLimits,
  };
}
