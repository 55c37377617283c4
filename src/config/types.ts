export const TOKEN_MODES = ['user', 'user-optional', 'client', 'user-or-client', 'none', 'exchange'] as const;
export type TokenMode = (typeof TOKEN_MODES)[number];

/** What a route's token mode sends upstream; the route checks and the proxy both decide from these, never from the mode's name. */
export interface TokenModeTraits {
  /** The signed-in user's token goes upstream when there is a user (so the session is loaded and kept fresh); `userHeaders` need it. */
  sendsUserToken: boolean;
  /** The user's token is not sent as it is but exchanged (RFC 8693) for one meant for the route (`audience`, `resource`, `scope`). */
  exchangesUserToken: boolean;
  /**
   * With no user (none signed in, a mode that ignores the user, or a session
   * the provider ended): refuse with 401, send no token, or send the
   * gateway's own client-credentials token (`scope` and `resource` apply then).
   */
  withoutUser: 'refuse' | 'no-token' | 'client-token';
}

/** Typed by mode, so that a mode added to TOKEN_MODES without its traits does not compile. */
export const TOKEN_MODE_TRAITS: Readonly<Record<TokenMode, Readonly<TokenModeTraits>>> = {
  user: { sendsUserToken: true, exchangesUserToken: false, withoutUser: 'refuse' },
  'user-optional': { sendsUserToken: true, exchangesUserToken: false, withoutUser: 'no-token' },
  client: { sendsUserToken: false, exchangesUserToken: false, withoutUser: 'client-token' },
  'user-or-client': { sendsUserToken: true, exchangesUserToken: false, withoutUser: 'client-token' },
  none: { sendsUserToken: false, exchangesUserToken: false, withoutUser: 'no-token' },
  exchange: { sendsUserToken: true, exchangesUserToken: true, withoutUser: 'refuse' },
};

/**
 * The RFC 8707 resource the user's own token is bound to on this route (a
 * refresh-token grant carrying `resource`), or undefined when the route sends
 * the session's token as it is, or exchanges it (`resource` is then the
 * exchange's parameter).
 */
export function userTokenResource(route: { token: TokenMode; resource?: string }): string | undefined {
  const traits = TOKEN_MODE_TRAITS[route.token];
  return traits.sendsUserToken && !traits.exchangesUserToken ? route.resource : undefined;
}

/** The modes that have a trait, in TOKEN_MODES order (for messages). */
export function tokenModesWith(has: (traits: TokenModeTraits) => boolean): TokenMode[] {
  return TOKEN_MODES.filter((mode) => has(TOKEN_MODE_TRAITS[mode]));
}

export const CLIENT_AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt'] as const;

/** Signature algorithms of DPoP proofs (RFC 9449): ES256 by default, EdDSA (Ed25519) selectable. */
export const DPOP_ALGS = ['ES256', 'EdDSA'] as const;
export type DpopAlg = (typeof DPOP_ALGS)[number];

/** Security profiles one switch turns on: `fapi2` is the FAPI 2.0 Security Profile. */
export const SECURITY_PROFILES = ['none', 'fapi2'] as const;
export type SecurityProfile = (typeof SECURITY_PROFILES)[number];
export type ClientAuthMethod = (typeof CLIENT_AUTH_METHODS)[number];

/** Where sessions live when they are shared: one node, a Redis Cluster, or a master found through Sentinel. */
export type RedisTopology =
  | { kind: 'single'; url: string }
  | { kind: 'cluster'; nodes: readonly string[] }
  | { kind: 'sentinel'; name: string; sentinels: ReadonlyArray<{ host: string; port: number }>; username?: string; password?: string };

/** A claim rule's value: the claim must equal it, or (a list) equal or, for an array claim, share one of the values. */
export type ClaimValue = string | number | boolean;
export type ClaimRule = ClaimValue | readonly ClaimValue[];

/** `require`: every claim rule must hold, and the session's `acr` must be one of `acr` when given. */
export interface RouteRequirement {
  claims?: Readonly<Record<string, ClaimRule>>;
  acr?: readonly string[];
}

/** `stepUp`: the session's login used this `acr`, and/or happened within `maxAge` seconds. */
export interface StepUpRequirement {
  acr?: string;
  maxAge?: number;
}

export interface RouteConfig {
  /** Normalised prefix, always starting with `/api`, no trailing slash. */
  prefix: string;
  target: URL;
  /** Replacement for the matched prefix; undefined forwards the path unchanged. */
  rewrite?: string;
  token: TokenMode;
  /** Upper-case method allow-list; undefined allows every method. */
  methods?: readonly string[];
  websocket: boolean;
  timeoutMs: number;
  /**
   * RFC 8707: the audience of the token this route sends, however it is
   * obtained: the user's token through a refresh-token grant carrying it
   * (cached in the session per resource), the gateway's client-credentials
   * token, or the exchanged token.
   */
  resource?: string;
  /** Scope of the client-credentials token or of the exchanged token. */
  scope?: string;
  /** RFC 8693 `audience` of the exchanged token (`exchange` routes). */
  audience?: string;
  /** Authorization on the session's claims before the upstream is called. */
  require?: RouteRequirement;
  /** How recently and how strongly the user must have authenticated. */
  stepUp?: StepUpRequirement;
  /** Static extra headers for the upstream request. */
  headers?: Readonly<Record<string, string>>;
  /** Claims sent as `X-User-<Claim>` headers (with `X-User-Sub`), for upstreams that do not validate JWTs. */
  userHeaders?: readonly string[];
  /** PEM bundle of CAs to trust for an https target, in addition to the system's. */
  caFile?: string;
  /** Lower-case names of headers removed by default that this route's upstream needs and trusts. */
  passHeaders?: ReadonlySet<string>;
  /** Most upstream connections this route keeps open at once (a request waits `timeoutMs` for one, then 503). */
  maxConnections: number;
}

export interface GatewayConfig {
  publicUrl: URL;
  /** `scheme://host[:port]` of the public URL, compared against `Origin`. */
  publicOrigin: string;
  /** True when the public URL is https: Secure cookies and the `__Host-` prefix. */
  secure: boolean;
  port: number;
  adminPort: number;
  /** Listen address of the admin port; unset: the main port's (all interfaces by default). */
  adminHost?: string;
  issuerUrl: URL;
  allowInsecureIssuer: boolean;
  clientId: string;
  clientSecret?: string;
  clientAuthMethod: ClientAuthMethod;
  /** PKCS#8 PEM, only for `private_key_jwt`. */
  clientPrivateKey?: string;
  /** Sender-constrained tokens (RFC 9449): every token request and upstream request carries a DPoP proof. */
  dpop: { enabled: boolean; alg: DpopAlg };
  /** `fapi2`: PAR, PKCE S256, RFC 9207 `iss`, private_key_jwt and DPoP all required (checked at start-up and by --check). */
  profile: SecurityProfile;
  redirectUri: string;
  scopes: string;
  /** First entry encrypts and signs; the others still decrypt and verify. */
  sessionSecrets: readonly string[];
  redisUrl?: string;
  /** Set when any of BFF_REDIS_URL, BFF_REDIS_CLUSTER_NODES or BFF_REDIS_SENTINELS is; unset means the memory store. */
  redis?: RedisTopology;
  routesFile: string;
  routes: readonly RouteConfig[];
  cookieName: string;
  /** Short-lived cookie that carries the login transaction across the IdP round trip. */
  txCookieName: string;
  sameSite: 'strict' | 'lax';
  sessionIdleTimeoutSec: number;
  sessionAbsoluteTimeoutSec: number;
  csrfHeader: string;
  refreshSkewSec: number;
  postLogoutRedirectUrl: string;
  errorUrl?: string;
  trustProxy: boolean | number | string;
  staticDir?: string;
  /** Development: proxy non-API navigations (and the HMR WebSocket) to this dev server instead of serving files. */
  spaDevUrl?: URL;
  /** Content-Security-Policy for the SPA's documents and the gateway's own pages. */
  contentSecurityPolicy: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Put the user's `sub` into access log lines (off: logs carry no user identifier). */
  logSub: boolean;
  /** How long SIGTERM waits for in-flight requests and streams before closing them. */
  shutdownTimeoutSec: number;
  /** Worker processes behind the main port (node:cluster); 1 is one process and no cluster. More than one only with Redis. */
  workers: number;
  /** Per client address on `/auth/login` and `/auth/callback`; a missing entry is turned off. */
  rateLimits: RateLimits;
  /** What one client connection may cost; applied where the http.Server is created. */
  connectionLimits: ConnectionLimits;
  /** How request bodies reach upstreams. */
  proxyLimits: ProxyLimits;
}

export interface ProxyLimits {
  /** Request bodies up to this size are read completely before an upstream connection is taken. */
  bufferBytes: number;
  /** Larger bodies stream to the upstream: at most this many at once per client address. */
  maxStreamsPerClient: number;
}

/** At most `limit` requests from one client address in any window of `windowMs` (sliding). */
export interface RateLimit {
  limit: number;
  windowMs: number;
}

export interface RateLimits {
  login?: RateLimit;
  callback?: RateLimit;
}

export interface ConnectionLimits {
  /** Request line plus headers; beyond it Node answers 431. */
  maxHeaderBytes: number;
  /** Beyond it the gateway answers 414. */
  maxUrlLength: number;
  /** From a request's first byte to the end of its headers (slow-loris). */
  headersTimeoutMs: number;
  /** Longest silence while a request body is being received; a body that keeps moving is never cut. */
  bodyIdleTimeoutMs: number;
  /** How long an idle keep-alive connection stays open between requests. */
  keepAliveTimeoutMs: number;
}
