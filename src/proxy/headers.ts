import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { GATEWAY_OWNED_HEADERS, HOP_BY_HOP_HEADERS, USER_HEADER_PREFIX } from '../config/reserved-headers.ts';

/**
 * Headers with which a browser could claim an address, a URL, a scheme or a
 * method the gateway did not authorise: upstream frameworks and the proxies
 * behind the gateway believe them. Removed unless a route's `passHeaders`
 * names one. (`Proxy` is httpoxy: CGI turns it into `HTTP_PROXY`.)
 */
export const SPOOFABLE_HEADERS: readonly string[] = [
  // client address
  'x-real-ip',
  'x-client-ip',
  'true-client-ip',
  'cf-connecting-ip',
  'forwarded-for',
  'x-cluster-client-ip',
  'fastly-client-ip',
  'x-originating-ip',
  'x-remote-ip',
  'x-remote-addr',
  'client-ip',
  'forwarded',
  'x-forwarded',
  'x-forwarded-port',
  'x-forwarded-server',
  // URL, host, scheme and routing overrides
  'x-original-url',
  'x-rewrite-url',
  'x-forwarded-uri',
  'x-forwarded-path',
  'x-forwarded-prefix',
  'x-original-uri',
  'x-original-host',
  'x-host',
  'x-forwarded-scheme',
  'x-forwarded-ssl',
  'x-url-scheme',
  'front-end-https',
  'x-http-destinationurl',
  'x-proxy-url',
  // outbound proxy (httpoxy)
  'proxy',
  // method overrides
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
];

const DROPPED_BY_DEFAULT = new Set([...HOP_BY_HOP_HEADERS, ...GATEWAY_OWNED_HEADERS, ...SPOOFABLE_HEADERS]);
/** For WebSocket handshakes, which must keep `Connection: upgrade` and `Upgrade`. */
const DROPPED_ON_UPGRADE = new Set([...DROPPED_BY_DEFAULT].filter((name) => name !== 'connection' && name !== 'upgrade'));

/** What a plain `Connection` header says; it names no extra header to drop. */
const PLAIN_CONNECTION = /^\s*(keep-alive|close)\s*$/i;

export interface UpstreamIdentity {
  publicHost: string;
  publicProto: string;
  /**
   * `X-Forwarded-For` for the upstream (`upstreamForwardedFor`): the incoming chain plus the
   * peer when `BFF_TRUST_PROXY` trusts the peer, only the peer otherwise. Not a client address.
   */
  forwardedFor: string;
  requestId: string;
  accessToken?: string;
  /** The access token is DPoP-bound (RFC 9449): `Authorization: DPoP`, the proof is added by whoever sends the request. */
  dpop?: boolean;
  /** The route's static extra headers. */
  extra?: Readonly<Record<string, string>>;
  /** `X-User-*` headers for the signed-in user, already computed. */
  user?: Readonly<Record<string, string>>;
  /** Lower-case names of otherwise removed headers that this route's upstream needs (`passHeaders`). */
  pass?: ReadonlySet<string>;
}

/**
 * Replaces the incoming headers with what the upstream should see: a new
 * object, built once, that the proxy copies as it is. (Deleting from the
 * parser's object instead would turn it into a slow dictionary for every
 * later copy and lookup.) Applies to WebSocket handshakes too. Framing and
 * `Host` are not in it: whoever sends the request sets them.
 */
export function prepareUpstreamHeaders(req: IncomingMessage, identity: UpstreamIdentity, keepUpgrade = false): void {
  const incoming: IncomingHttpHeaders = req.headers;
  const dropped = keepUpgrade ? DROPPED_ON_UPGRADE : DROPPED_BY_DEFAULT;
  const named = connectionNamed(incoming.connection, keepUpgrade);
  const pass = identity.pass;
  const headers: IncomingHttpHeaders = {};
  for (const name in incoming) {
    if (pass?.has(name) !== true) {
      // `X_User_Sub` is `X-User-Sub` to a CGI, WSGI, Rack or PHP upstream: names with `_` never pass (nginx's default).
      if (dropped.has(name) || name.includes('_') || name.startsWith(USER_HEADER_PREFIX)) continue;
    }
    // `Connection` may drop the browser's own end-to-end headers, never framing or the gateway's (neither is copied from it).
    if (named?.has(name)) continue;
    headers[name] = incoming[name];
  }
  if (identity.extra) for (const name in identity.extra) headers[name.toLowerCase()] = identity.extra[name];
  if (identity.user) for (const name in identity.user) headers[name] = identity.user[name];
  if (identity.accessToken) headers.authorization = `${identity.dpop === true ? 'DPoP' : 'Bearer'} ${identity.accessToken}`;
  headers['x-forwarded-for'] = identity.forwardedFor;
  headers['x-forwarded-proto'] = identity.publicProto;
  headers['x-forwarded-host'] = identity.publicHost;
  headers['x-request-id'] = identity.requestId;
  // A handshake says only what it is; anything else a browser put in `Connection` would be read by the upstream.
  if (keepUpgrade && headers.upgrade !== undefined) headers.connection = 'Upgrade';
  req.headers = headers;
}

/**
 * The headers a `Connection` header names as hop-by-hop, if it names any (it rarely does): for
 * requests to an upstream and for its responses alike. `keepUpgrade` keeps `upgrade` off the list.
 */
export function connectionNamed(connection: string | undefined, keepUpgrade: boolean): Set<string> | undefined {
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
