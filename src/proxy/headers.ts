import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';

/** RFC 9110 hop-by-hop headers, plus the de-facto ones; `transfer-encoding` is left to Node, which re-frames the body itself. */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'upgrade'];

/** Headers the browser must never be able to set on an upstream request. */
const BROWSER_ONLY = ['cookie', 'authorization', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'forwarded', 'x-real-ip'];

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
 * Rewrites the incoming headers in place into what the upstream should see.
 * The proxy copies `req.headers` once when it builds the upstream request, so
 * doing it here costs no extra copy and applies to WebSocket handshakes too.
 */
export function prepareUpstreamHeaders(req: IncomingMessage, identity: UpstreamIdentity, keepUpgrade = false): void {
  const headers: IncomingHttpHeaders = req.headers;
  const connection = headers.connection;
  if (typeof connection === 'string') {
    for (const token of connection.split(',')) {
      const name = token.trim().toLowerCase();
      if (name && !(keepUpgrade && name === 'upgrade')) delete headers[name];
    }
  }
  for (const name of HOP_BY_HOP) if (!(keepUpgrade && (name === 'connection' || name === 'upgrade'))) delete headers[name];
  for (const name of BROWSER_ONLY) delete headers[name];
  // Identity headers are trusted upstream only because the gateway is the one setting them: never pass a browser's.
  for (const name in headers) if (name.startsWith(USER_HEADER_PREFIX)) delete headers[name];
  if (identity.extra) for (const name in identity.extra) headers[name.toLowerCase()] = identity.extra[name];
  if (identity.user) for (const name in identity.user) headers[name] = identity.user[name];
  if (identity.accessToken) headers.authorization = `Bearer ${identity.accessToken}`;
  headers['x-forwarded-for'] = identity.forwardedFor;
  headers['x-forwarded-proto'] = identity.publicProto;
  headers['x-forwarded-host'] = identity.publicHost;
  headers['x-request-id'] = identity.requestId;
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
