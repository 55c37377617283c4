import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { GATEWAY_OWNED_HEADERS, gatewayOwnsHeader, HOP_BY_HOP_HEADERS } from './reserved-headers.ts';
import { TOKEN_MODE_TRAITS, TOKEN_MODES, tokenModesWith, type ClaimRule, type ClaimValue, type RouteConfig, type RouteRequirement } from './types.ts';

const METHOD = /^[A-Z]+$/;
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
/** Headers a route may not set statically: the gateway owns them, or they are hop-by-hop. */
const RESERVED_HEADERS = new Set([...HOP_BY_HOP_HEADERS, ...GATEWAY_OWNED_HEADERS, 'forwarded']);
/** Upstream connections per route unless `maxConnections` says otherwise. */
const DEFAULT_MAX_CONNECTIONS = 256;

const routeSchema = z
  .object({
    prefix: z
      .string()
      .regex(/^\/api(\/[A-Za-z0-9._~!$&'()*+,;=:@-]+)*\/?$/, 'must be /api or a path under /api made of plain segments (no dot segments, no encoding)')
      .refine((p) => !p.split('/').some((s) => s === '.' || s === '..'), 'must not contain dot segments'),
    target: z.string().refine(isHttpUrl, 'must be an absolute http:// or https:// URL without query or fragment'),
    rewrite: z
      .string()
      .regex(/^\/[A-Za-z0-9._~!$&'()*+,;=:@/-]*$/, 'must be an absolute path ("/" or "/v1/orders")')
      .refine((p) => !p.split('/').some((s) => s === '.' || s === '..'), 'must not contain dot segments')
      .optional(),
    token: z.enum(TOKEN_MODES, { message: `must be one of ${TOKEN_MODES.join(', ')}` }),
    scope: z
      .string()
      .regex(/^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$/, 'must be space-separated scope names')
      .optional(),
    resource: z
      .string()
      .refine((v) => isAbsoluteUri(v), 'must be an absolute URI without a fragment (RFC 8707)')
      .optional(),
    methods: z
      .array(
        z
          .string()
          .transform((m) => m.toUpperCase())
          .pipe(z.string().regex(METHOD, 'must be an HTTP method name')),
      )
      .min(1)
      .optional(),
    websocket: z.boolean().default(false),
    stripPrefix: z.boolean().default(false),
    headers: z
      .record(
        z
          .string()
          .regex(HEADER_NAME, 'header names must be tokens')
          .refine((h) => !RESERVED_HEADERS.has(h.toLowerCase()), 'this header is set by the gateway itself'),
        z.string().regex(/^[\t\x20-\x7e]*$/, 'header values must be printable ASCII'),
      )
      .optional(),
    userHeaders: z.array(z.string().regex(/^[A-Za-z0-9_]+$/, 'claim names only (letters, digits, _)')).optional(),
    caFile: z.string().min(1).optional(),
    timeoutMs: z.number().int().min(1).max(3_600_000).default(30_000),
    passHeaders: z.array(z.string().regex(HEADER_NAME, 'header names must be tokens')).optional(),
    maxConnections: z.number().int().min(1).max(100_000).default(DEFAULT_MAX_CONNECTIONS),
    audience: z.string().min(1, 'must not be empty').optional(),
    require: z
      .object({
        // Checked by claimRuleProblems, so that a malformed rule is named with its claim.
        claims: z.record(z.string().min(1, 'claim names must not be empty'), z.unknown()).optional(),
        acr: z.array(z.string().min(1, 'must not be empty')).min(1, 'must list at least one value').optional(),
      })
      .strict()
      .refine((r) => r.claims !== undefined || r.acr !== undefined, 'must name claims, acr or both')
      .optional(),
    stepUp: z
      .object({
        acr: z
          .string()
          .regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'must be one acr value (no spaces)')
          .optional(),
        maxAge: z.number().int('must be whole seconds').min(0).max(31_536_000).optional(),
      })
      .strict()
      .refine((r) => r.acr !== undefined || r.maxAge !== undefined, 'must name acr, maxAge or both')
      .optional(),
  })
  .strict();

const fileSchema = z.object({ routes: z.array(routeSchema) }).strict();

const CLAIM_VALUE = (value: unknown): value is ClaimValue => typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';

/** What is wrong with each claim rule of `require.claims` (a value, or a non-empty list of values; never an operator object). */
function claimRuleProblems(claims: Readonly<Record<string, unknown>>, where: string): { rules: Record<string, ClaimRule>; problems: string[] } {
  const rules: Record<string, ClaimRule> = {};
  const problems: string[] = [];
  for (const [claim, rule] of Object.entries(claims)) {
    if (CLAIM_VALUE(rule)) rules[claim] = rule;
    else if (Array.isArray(rule) && rule.length > 0 && rule.every(CLAIM_VALUE)) rules[claim] = rule;
    else if (Array.isArray(rule)) problems.push(`${where}.require.claims.${claim}: must list at least one string, number or boolean`);
    else if (rule !== null && typeof rule === 'object') {
      const operators = Object.keys(rule).map((key) => `"${key}"`);
      problems.push(`${where}.require.claims.${claim}: unknown operator ${operators.join(', ') || '{}'}: a claim rule is a value (equal) or a list of values (one of)`);
    } else problems.push(`${where}.require.claims.${claim}: must be a string, number, boolean or a list of them`);
  }
  return { rules, problems };
}

function isAbsoluteUri(text: string): boolean {
  try {
    return !new URL(text).hash;
  } catch {
    return false;
  }
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === 'http:' || url.protocol === 'https:') && !url.search && !url.hash && !url.username;
  } catch {
    return false;
  }
}

function readable(path: string): boolean {
  try {
    readFileSync(path);
    return true;
  } catch {
    return false;
  }
}

function trimSlash(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/** Parses and validates the routes file; every problem is returned, prefixed with where it is. */
export function parseRoutes(json: unknown, source: string): { routes: RouteConfig[]; problems: string[] } {
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) {
    return {
      routes: [],
      problems: parsed.error.issues.map((issue) => `${source}: ${issue.path.length ? issue.path.join('.') : '(file)'}: ${issue.message}`),
    };
  }
  const problems: string[] = [];
  const seen = new Map<string, number>();
  const routes = parsed.data.routes.map((r, i): RouteConfig => {
    if (r.stripPrefix && r.rewrite !== undefined) problems.push(`${source}: routes.${i}: set either rewrite or stripPrefix (stripPrefix is rewrite "/")`);
    if (r.userHeaders && !TOKEN_MODE_TRAITS[r.token].sendsUserToken) {
      problems.push(`${source}: routes.${i}.userHeaders: needs a token mode with a user (${tokenModesWith((t) => t.sendsUserToken).join(', ')})`);
    }
    if (r.caFile !== undefined && !r.target.startsWith('https:')) problems.push(`${source}: routes.${i}.caFile: only applies to an https target`);
    const caFile = r.caFile === undefined ? undefined : resolve(dirname(source), r.caFile);
    if (caFile !== undefined && r.target.startsWith('https:') && !readable(caFile)) problems.push(`${source}: routes.${i}.caFile: cannot read ${caFile}`);
    const prefix = trimSlash(r.prefix);
    const where = `${source}: routes.${i} (route ${prefix})`;
    const traits = TOKEN_MODE_TRAITS[r.token];
    const quoted = (modes: string[]): string => modes.map((mode) => `"${mode}"`).join(', ');
    if (r.scope !== undefined && traits.withoutUser !== 'client-token' && !traits.exchangesUserToken) {
      problems.push(`${where}.scope: applies only to token ${quoted(tokenModesWith((t) => t.withoutUser === 'client-token' || t.exchangesUserToken))}`);
    }
    if (r.resource !== undefined && !traits.sendsUserToken && traits.withoutUser !== 'client-token') {
      problems.push(`${where}.resource: the route sends no token (token "${r.token}"), so it has no audience to choose`);
    }
    if (r.audience !== undefined && !traits.exchangesUserToken) problems.push(`${where}.audience: applies only to token ${quoted(tokenModesWith((t) => t.exchangesUserToken))}`);
    if (traits.exchangesUserToken && r.audience === undefined && r.resource === undefined) {
      problems.push(`${where}: token "${r.token}" needs "audience" or "resource": the token the user's is exchanged for must be meant for someone`);
    }
    const userRequired = traits.sendsUserToken && traits.withoutUser === 'refuse';
    const needsUser = tokenModesWith((t) => t.sendsUserToken && t.withoutUser === 'refuse');
    if (r.require !== undefined && !userRequired) problems.push(`${where}.require: needs a signed-in user, so token ${quoted(needsUser)} (not "${r.token}")`);
    if (r.stepUp !== undefined && !userRequired) problems.push(`${where}.stepUp: needs a signed-in user, so token ${quoted(needsUser)} (not "${r.token}")`);
    let require: RouteRequirement | undefined;
    if (r.require !== undefined) {
      const claims = r.require.claims === undefined ? undefined : claimRuleProblems(r.require.claims, where);
      if (claims) problems.push(...claims.problems);
      require = { ...(claims ? { claims: claims.rules } : {}), ...(r.require.acr ? { acr: [...new Set(r.require.acr)] } : {}) };
    }
    for (const name of r.passHeaders ?? []) {
      if (gatewayOwnsHeader(name)) problems.push(`${source}: routes.${i}.passHeaders (route ${prefix}): "${name}" is set by the gateway itself and can never be passed from the browser`);
    }
    const earlier = seen.get(prefix);
    if (earlier !== undefined) problems.push(`${source}: routes.${i}.prefix: "${prefix}" is already used by routes.${earlier}`);
    seen.set(prefix, i);
    return {
      prefix,
      target: new URL(r.target),
      ...(r.rewrite !== undefined ? { rewrite: trimSlash(r.rewrite) } : r.stripPrefix ? { rewrite: '/' } : {}),
      token: r.token,
      ...(r.scope !== undefined ? { scope: r.scope } : {}),
      ...(r.resource !== undefined ? { resource: r.resource } : {}),
      ...(r.methods ? { methods: [...new Set(r.methods)] } : {}),
      websocket: r.websocket,
      ...(r.headers ? { headers: r.headers } : {}),
      ...(r.userHeaders ? { userHeaders: r.userHeaders } : {}),
      ...(caFile !== undefined ? { caFile } : {}),
      timeoutMs: r.timeoutMs,
      ...(r.passHeaders?.length ? { passHeaders: new Set(r.passHeaders.map((name) => name.toLowerCase())) } : {}),
      maxConnections: r.maxConnections,
      ...(r.audience !== undefined ? { audience: r.audience } : {}),
      ...(require ? { require } : {}),
      ...(r.stepUp ? { stepUp: { ...(r.stepUp.acr !== undefined ? { acr: r.stepUp.acr } : {}), ...(r.stepUp.maxAge !== undefined ? { maxAge: r.stepUp.maxAge } : {}) } } : {}),
    };
  });
  return { routes, problems };
}

export function loadRoutesFile(path: string): { routes: RouteConfig[]; problems: string[] } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const reason = err instanceof Error && 'code' in err ? String(err.code) : 'unreadable';
    return { routes: [], problems: [`BFF_ROUTES_FILE: cannot read ${path} (${reason})`] };
  }
  try {
    return parseRoutes(JSON.parse(text), path);
  } catch (err) {
    return { routes: [], problems: [`${path}: not valid JSON (${err instanceof Error ? err.message : 'parse error'})`] };
  }
}
