import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';

/** RFC 9110 hop-by-hop headers, plus the de-facto ones; `transfer-encoding` is left to Node, which re-frames the body itself. */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'upgrade'];

/** Headers the browser must never be able to set on an upstream request. */
const BROWSER_ONLY = ['cookie', 'authorization', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'forwarded', 'x-real-ip'];

const NEVER_FORWARDED = new Set([...HOP_BY_HOP, ...BROWSER_ONLY]);
/** For WebSocket handshakes, which must keep `Connection: upgrade` and `Upgrade`. */
const NEVER_FORWARDED_ON_UPGRADE = new Set([...NEVER_FORWARDED].filter((name) => name !== 'connection' && name !== 'upgrade'));

/** What a plain `Connection` header says; it names no extra header to drop. */
const PLAIN_CONNECTION = /^\s*(keep-alive|close)\s*$/i;

/** Prefix of the identity headers the gateway itself sets for upstreams that trust it. */
const USER_HEADER_PREFIX = 'x-user-';

export interface UpstreamIdentity {
  publicHost: string;
  publicProto: string;
  /** Client address chain as Express resolved it under `trust proxy`. */
  forwardedFor: string;
  requestId: string;
  accessToken?: string;
  /** The route's static extra headers. */
  extra?: Readonly<Record<string, string>>;
  /** `X-User-*` headers for the signed-in user, already computed. */
  user?: Readonly<Record<string, string>>;
}

/**
 * Replaces the incoming headers with what the upstream should see: a new
 * object, built once, that the proxy copies as it is. (Deleting from the
 * parser's object instead would turn it into a slow dictionary for every
 * later copy and lookup.) Applies to WebSocket handshakes too.
 */
export function prepareUpstreamHeaders(req: IncomingMessage, identity: UpstreamIdentity, keepUpgrade = false): void {
  const incoming: IncomingHttpHeaders = req.headers;
  const never = keepUpgrade ? NEVER_FORWARDED_ON_UPGRADE : NEVER_FORWARDED;
  const named = connectionNamed(incoming.connection, keepUpgrade);
  const headers: IncomingHttpHeaders = {};
  for (const name in incoming) {
    // Identity headers are trusted upstream only because the gateway is the one setting them: never pass a browser's.
    if (never.has(name) || name.startsWith(USER_HEADER_PREFIX) || named?.has(name)) continue;
    headers[name] = incoming[name];
  }
  if (identity.extra) for (const name in identity.extra) headers[name.toLowerCase()] = identity.extra[name];
  if (identity.user) for (const name in identity.user) headers[name] = identity.user[name];
  if (identity.accessToken) headers.authorization = `Bearer ${identity.accessToken}`;
  headers['x-forwarded-for'] = identity.forwardedFor;
  headers['x-forwarded-proto'] = identity.publicProto;
  headers['x-forwarded-host'] = identity.publicHost;
  headers['x-request-id'] = identity.requestId;
  req.headers = headers;
}

/** The headers a `Connection` header names as hop-by-hop, if it names any (it rarely does). */
function connectionNamed(connection: string | undefined, keepUpgrade: boolean): Set<string> | undefined {
  if (connection === undefined || PLAIN_CONNECTION.test(connection)) return undefined;
  const named = new Set<string>();
  for (const token of connection.split(',')) {
    const name = token.trim().toLowerCase();
    if (name && !(keepUpgrade && name === 'upgrade')) named.add(name);
  }
  return named;
}

/**
 * `X-User-Sub` plus `X-User-<Claim>` for each configured claim the user has.
 * Arrays are comma-joined; values outside printable ASCII are percent-encoded
 * (HTTP header values cannot carry them reliably); objects are left out.
 */
export function userHeaders(sub: string, claims: Readonly<Record<string, unknown>>, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = { [`${USER_HEADER_PREFIX}sub`]: headerValue(sub) };
  for (const name of names) {
    const value = claims[name];
    const text = Array.isArray(value) ? value.filter(isScalar).join(',') : isScalar(value) ? String(value) : undefined;
    if (text !== undefined) out[`${USER_HEADER_PREFIX}${name.toLowerCase().replace(/_/g, '-')}`] = headerValue(text);
  }
  return out;
}

const isScalar = (value: unknown): value is string | number | boolean => typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
const headerValue = (text: string): string => (/^[\x20-\x7e]*$/.test(text) ? text : encodeURIComponent(text));
