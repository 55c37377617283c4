import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import {
  errors,
  interactionPolicy,
  Provider,
  type Account,
  type AdapterFactory,
  type ClientAuthMethod,
  type ClientMetadata,
  type Configuration,
  type JWK,
  type JWKS,
  type KoaContextWithOIDC,
  type ResourceServer,
} from 'oidc-provider';
import { FAPI2_CLIENT, fapi2Features, fapi2SigningJwk, overrideDiscovery } from './idp-fapi2.ts';
import { createIdpStorage } from './idp-storage.ts';
import { dpopFeature, exchangeBinding, type IdpDpopOptions } from './idp-dpop.ts';
import { ProgrammableTokenEndpoint } from './token-endpoint.ts';

export const TEST_CLIENT_ID = 'bff';
export const TEST_CLIENT_SECRET = 'bff-secret-which-is-long-enough';

/**
 * A client of its own for `introspect()`, so that introspection works whatever
 * authentication method the client under test is registered with.
 */
const INTROSPECTOR = { id: 'test-introspector', secret: 'test-introspector-secret-which-is-long-enough' };
const COOKIE_KEYS = ['test-idp-cookie-key-0123456789abcdef', 'test-idp-cookie-key-fedcba9876543210'];
const SIGNING_KEY_ID = 'test-idp-rs256';
const INTERACTION_PATH = '/interaction/';
/** oidc-provider's default token endpoint path. */
const TOKEN_PATH = '/token';

export type IdpOptions = {
  /** Replaces the default `bff` client (and makes the client options below irrelevant). */
  clients?: ClientMetadata[];
  redirectUris?: string[];
  postLogoutRedirectUris?: string[];
  /** Registers the default client for back-channel logout (with `sid` required). */
  backchannelLogoutUri?: string;
  /** Default `['authorization_code', 'refresh_token']`; add `client_credentials` for `token: client` routes. */
  grantTypes?: string[];
  /** Default `client_secret_basic`. */
  tokenEndpointAuthMethod?: ClientAuthMethod;
  /** The default client's public keys, for `private_key_jwt`. */
  clientJwks?: JWKS;
  /** Seconds; default 300. Also the lifetime of client-credentials tokens. */
  accessTokenTtl?: number;
  /** Seconds; default 14 days. */
  refreshTokenTtl?: number;
  /** Advertise and accept pushed authorization requests; default true. */
  par?: boolean;
  /** Rotate the refresh token on every use; default false. */
  rotateRefreshToken?: boolean;
  /** Holds every token endpoint request this long, e.g. so that concurrent refreshes provably overlap. */
  tokenEndpointDelayMs?: number;
  /** Offer a revocation endpoint (RFC 7009); default true. Entra ID, for one, has none. */
  revocation?: boolean;
  /** Support back-channel logout at all (advertised in discovery, registrable); default true. */
  backchannelLogout?: boolean;
  /** Put the `sid` claim in ID tokens and logout tokens (back-channel logout with the session required); default true. */
  sidClaim?: boolean;
  /** Seconds; default `accessTokenTtl`. Lifetime of resource-bound (RFC 8707) and exchanged (RFC 8693) access tokens. */
  routeTokenTtl?: number;
  /**
   * Authentication context classes the IdP offers. Given: every login has an `acr` (the first value unless
   * `acr_values` or `nextAcr` say otherwise), every ID token carries `acr` and `auth_time`, and an
   * `acr_values` the IdP session does not meet makes the user log in again, as a real IdP's step-up does.
   */
  acrValues?: string[];
  /** Extra claims per account id (e.g. `groups`), released with the `profile` scope, in ID tokens too. */
  accountClaims?: Record<string, Record<string, unknown>>;
  /** FAPI 2.0 (see idp-fapi2.ts): PAR required (unless `par: false`), DPoP, ES256 ID tokens; the default client on private_key_jwt (give `clientJwks`). */
  fapi2?: boolean;
  /** Discovery members replaced (`undefined` removes one), to play providers that advertise less. */
  discovery?: Record<string, unknown>;
  /** DPoP (RFC 9449), on by default as in oidc-provider 9: demand nonces, or turn it off (an IdP that issues Bearer tokens whatever the proof). */
  dpop?: IdpDpopOptions;
};

/** RFC 8693 token exchange, which oidc-provider does not implement: the test IdP registers its own grant. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/** How the token-exchange grant answers: issue (default), refuse with an OAuth error, or fail with a 500. */
export type ExchangeBehaviour = { kind: 'issue' } | { kind: 'refuse'; error: 'invalid_target' | 'invalid_request' | 'invalid_grant' } | { kind: 'fail' };

/** What the IdP was asked at its authorization endpoint (PAR included: the pushed parameters). */
export type AuthorizationRequestSeen = { acr_values?: string; max_age?: string; prompt?: string };

/** Successful requests, counted from provider events, to prove what the gateway did (or did not do). */
export type IdpCounts = {
  authorizationCode: number;
  refreshToken: number;
  clientCredentials: number;
  par: number;
  revocation: number;
  /** Refresh-token grants carrying `resource` (also counted in `refreshToken`). */
  resourceRefresh: number;
  /** Token-exchange grants that issued a token. */
  tokenExchange: number;
};

export type IntrospectionResponse = { active: boolean; [claim: string]: unknown };

export type TestIdp = {
  /** http://localhost:<port> */
  readonly issuer: string;
  readonly port: number;
  readonly provider: Provider;
  /** The account the next interaction logs in; default 'alice'. */
  nextAccount: string;
  /** The `acr` the next logins get, whatever was asked (to make the IdP ignore `acr_values`); default: what was asked. */
  nextAcr: string | undefined;
  /** How many seconds before now the next logins claim to have happened (their `auth_time`); default 0. */
  nextLoginAgeSec: number;
  /** The next interaction is cancelled by the user: the IdP answers `access_denied`. One-shot. */
  cancelNext: boolean;
  /** Every authorization request's step-up parameters, in order. */
  readonly authorizationRequests: AuthorizationRequestSeen[];
  /** Extra claims per account; changes apply to the next login. */
  readonly accountClaims: Record<string, Record<string, unknown>>;
  /** Accounts that no longer exist: their refresh tokens fail with invalid_grant. */
  readonly disabledAccounts: Set<string>;
  /** Resource indicators the IdP does not know (`invalid_target` at authorization and token requests). */
  readonly unknownResources: Set<string>;
  /** What the next token exchanges do; `{ kind: 'issue' }` unless a test says otherwise. */
  exchange: ExchangeBehaviour;
  /** Seconds that resource-bound and exchanged tokens issued from now on live (option `routeTokenTtl`). */
  routeTokenTtl: number;
  readonly counts: IdpCounts;
  /** The key that signs ID and logout tokens, to forge tokens the gateway must accept. */
  readonly signingKey: { kid: string; alg: 'RS256'; privateKey: KeyObject };
  resetCounts(): void;
  /** RFC 7662 introspection, as a resource server would ask. */
  introspect(token: string): Promise<IntrospectionResponse>;
  /**
   * Every token request passes through this programmable proxy: it counts
   * them by grant type and can answer as other providers do (see TokenAnswer).
   */
  readonly tokenEndpoint: ProgrammableTokenEndpoint;
  /** Makes the IdP POST a real logout token to the client's back-channel logout URI. */
  sendBackchannelLogout(sub: string, sid: string, clientId?: string): Promise<void>;
  /** Simulates an outage: stops listening and drops open connections. */
  stop(): Promise<void>;
  /** Ends the outage, on the same port. */
  start(): Promise<void>;
  close(): Promise<void>;
};

/** The slice of oidc-provider's Client model that its type definitions leave out. */
type BackchannelCapableClient = { backchannelLogout(sub: string, sid: string): Promise<void> };

/**
 * An in-process OpenID provider (oidc-provider 9) for integration tests. Its interaction
 * endpoint logs `nextAccount` in and grants everything asked for without any form, so a
 * login completes through redirects alone.
 *
 * The issuer uses the host name `localhost` while gateways under test use `127.0.0.1`:
 * browsers do not scope cookies by port, and the two must not share a cookie host.
 */
export async function startIdp(options: IdpOptions = {}): Promise<TestIdp> {
  // Before listening, so that a bad option leaves no server behind to hold jest open.
  const clients = options.clients ?? [defaultClient(options)];
  let onRequest: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const server = createServer((req, res) => onRequest?.(req, res));
  // The port must exist before the provider, whose issuer contains it.
  const port = await listen(server, 0);
  const issuer = `http://localhost:${port}`;
  // The provider's token endpoint proper, reachable only through the programmable proxy on the public port.
  let onTokenRequest: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const tokenServer = createServer((req, res) => onTokenRequest?.(req, res));
  let tokenPort: number;
  try {
    tokenPort = await listen(tokenServer, 0);
  } catch (err) {
    server.close();
    throw err;
  }
  const tokenEndpoint = new ProgrammableTokenEndpoint(() => ({ port: tokenPort }));

  const counts: IdpCounts = { authorizationCode: 0, refreshToken: 0, clientCredentials: 0, par: 0, revocation: 0, resourceRefresh: 0, tokenExchange: 0 };
  const disabledAccounts = new Set<string>();
  const unknownResources = new Set<string>();
  // Read when a token is issued, so that a test can shorten the life of the next route tokens.
  let routeTokenTtl = (): number => options.routeTokenTtl ?? options.accessTokenTtl ?? 300;
  const signingKey = testSigningKey();
  const storage = createIdpStorage();
  const accountClaims: Record<string, Record<string, unknown>> = { ...options.accountClaims };
  const authorizationRequests: AuthorizationRequestSeen[] = [];
  // oidc-provider structuredClones static clients; in a test runner's VM context the clone's objects come from the host
  // realm, and its plain-object check then refuses their JWKS keys. Clients with keys are stored as registered clients.
  const withKeys = clients.filter((c) => c.jwks !== undefined);
  const provider = new Provider(
    issuer,
    configure(
      options,
      clients.filter((c) => c.jwks === undefined),
      signingKey.jwk,
      disabledAccounts,
      storage,
      unknownResources,
      () => routeTokenTtl(),
      accountClaims,
    ),
  );
  for (const registered of withKeys) await storage('Client').upsert(registered.client_id, { ...registered });
  provider.on('grant.success', (ctx) => countGrant(counts, ctx));
  if (options.discovery) provider.use(overrideDiscovery(options.discovery));
  const tokenDelayMs = options.tokenEndpointDelayMs;
  // Middleware must be added before provider.callback() is taken below.
  if (tokenDelayMs) {
    provider.use(async (ctx, next) => {
      if (ctx.method === 'POST' && ctx.path === '/token') await delay(tokenDelayMs);
      await next();
    });
  }
  provider.on('pushed_authorization_request.success', () => {
    counts.par += 1;
  });
  provider.on('server_error', (_ctx, err) => {
    console.error('test IdP server_error:', err);
  });
  // There is no revocation event in oidc-provider 9: count answered revocation requests instead.
  provider.use(async (ctx, next) => {
    await next();
    const oidc: { route?: string } | undefined = ctx.oidc;
    if (oidc?.route === 'revocation' && ctx.status === 200) counts.revocation += 1;
  });
  provider.use(async (ctx, next) => {
    await next();
    const oidc: { route?: string; params?: Record<string, unknown> } | undefined = ctx.oidc;
    if (oidc?.route !== 'authorization' || oidc.params === undefined) return;
    const seen: AuthorizationRequestSeen = {};
    for (const name of ['acr_values', 'max_age', 'prompt'] as const) {
      const value = oidc.params[name];
      if (value !== undefined && value !== null) seen[name] = String(value);
    }
    authorizationRequests.push(seen);
  });

  const idp: TestIdp = {
    issuer,
    port,
    provider,
    nextAccount: 'alice',
    nextAcr: undefined,
    nextLoginAgeSec: 0,
    cancelNext: false,
    authorizationRequests,
    accountClaims,
    disabledAccounts,
    unknownResources,
    exchange: { kind: 'issue' },
    routeTokenTtl: options.routeTokenTtl ?? options.accessTokenTtl ?? 300,
    counts,
    tokenEndpoint,
    signingKey: { kid: SIGNING_KEY_ID, alg: 'RS256', privateKey: signingKey.privateKey },
    resetCounts() {
      for (const key of Object.keys(counts) as (keyof IdpCounts)[]) counts[key] = 0;
    },
    async introspect(token) {
      const response = await fetch(`${issuer}/token/introspection`, {
        method: 'POST',
        headers: { authorization: basicAuth(INTROSPECTOR.id, INTROSPECTOR.secret) },
        body: new URLSearchParams({ token }),
      });
      if (!response.ok) throw new Error(`introspection failed: HTTP ${response.status} ${await response.text()}`);
      return (await response.json()) as IntrospectionResponse;
    },
    async sendBackchannelLogout(sub, sid, clientId = TEST_CLIENT_ID) {
      const client = await provider.Client.find(clientId);
      if (!client) throw new Error(`unknown client ${clientId}`);
      await (client as unknown as BackchannelCapableClient).backchannelLogout(sub, sid);
    },
    async stop() {
      if (!server.listening) return;
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
    async start() {
      if (!server.listening) await listen(server, port);
    },
    async close() {
      await idp.stop();
      tokenServer.closeAllConnections();
      await new Promise<void>((resolve) => tokenServer.close(() => resolve()));
    },
  };

  registerTokenExchange(provider, idp, options.dpop?.off === true);
  routeTokenTtl = () => idp.routeTokenTtl;
  const callback = provider.callback();
  onTokenRequest = (req, res) => void callback(req, res);
  onRequest = (req, res) => {
    if (req.method === 'POST' && req.url?.split('?')[0] === TOKEN_PATH) {
      tokenEndpoint.handle(req, res);
      return;
    }
    if (req.url?.startsWith(INTERACTION_PATH)) {
      autoInteraction(provider, idp, options, req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain' });
        res.end(`test IdP interaction failed: ${err instanceof Error ? err.message : String(err)}`);
      });
      return;
    }
    void callback(req, res);
  };
  return idp;
}

function configure(
  options: IdpOptions,
  clients: ClientMetadata[],
  signingJwk: JWK,
  disabledAccounts: ReadonlySet<string>,
  storage: AdapterFactory,
  unknownResources: ReadonlySet<string>,
  routeTokenTtl: () => number,
  accountClaims: Readonly<Record<string, Record<string, unknown>>>,
): Configuration {
  const accessTokenTtl = options.accessTokenTtl ?? 300;
  const extraClaims = [...new Set(Object.values(options.accountClaims ?? {}).flatMap((claims) => Object.keys(claims)))];
  const refreshTokenTtl = options.refreshTokenTtl ?? 14 * 24 * 3600;
  return {
    clients: [
      ...clients,
      {
        client_id: INTROSPECTOR.id,
        client_secret: INTROSPECTOR.secret,
        grant_types: [],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    adapter: storage,
    jwks: { keys: options.fapi2 ? [signingJwk, fapi2SigningJwk()] : [signingJwk] },
    cookies: { keys: COOKIE_KEYS },
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      // oidc-provider's default rule, spelled out: a client revokes only its own tokens.
      revocation: { enabled: options.revocation ?? true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
      // Resource servers introspect tokens issued to the gateway: any registered client may ask.
      introspection: { enabled: true, allowedPolicy: async () => true },
      rpInitiatedLogout: { enabled: true, logoutSource: autoConfirmLogout, postLogoutSuccessSource: loggedOutPage },
      backchannelLogout: { enabled: options.backchannelLogout ?? true },
      clientCredentials: { enabled: true },
      pushedAuthorizationRequests: { enabled: options.par ?? true },
      dPoP: dpopFeature(options.dpop),
      // RFC 8707: any resource a test names (but those in `unknownResources`) is a resource server taking RS256 JWTs with aud = the resource.
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => oneOf,
        useGrantedResource: async () => false,
        getResourceServerInfo: async (_ctx, indicator) => {
          if (unknownResources.has(indicator)) throw new errors.InvalidTarget();
          return resourceServer(indicator, routeTokenTtl());
        },
      },
      ...(options.fapi2 ? fapi2Features(options.par ?? true) : {}),
    },
    claims: {
      acr: null,
      sid: null,
      auth_time: null,
      iss: null,
      openid: ['sub'],
      profile: ['name', 'given_name', 'family_name', ...extraClaims],
      email: ['email', 'email_verified'],
    },
    // Scope-based claims in the ID token too, so the gateway needs no userinfo call.
    conformIdTokenClaims: false,
    findAccount: (_ctx, sub) => (disabledAccounts.has(sub) ? undefined : testAccount(sub, accountClaims[sub])),
    interactions: { policy: stepUpPolicy(), url: (_ctx, interaction) => `${INTERACTION_PATH}${interaction.uid}` },
    ...(options.acrValues ? { acrValues: options.acrValues } : {}),
    // By default a refresh token also needs offline_access and prompt=consent; the gateway's tests want one always.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: options.rotateRefreshToken ?? false,
    ttl: {
      // A resource server's own lifetime (route tokens) wins, as in oidc-provider's default policy.
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? accessTokenTtl,
      ClientCredentials: () => accessTokenTtl,
      AuthorizationCode: () => 60,
      IdToken: () => 3600,
      RefreshToken: () => refreshTokenTtl,
      Interaction: () => 3600,
      Session: () => 14 * 24 * 3600,
      Grant: () => 14 * 24 * 3600,
    },
    renderError: (ctx, out) => {
      ctx.type = 'html';
      ctx.body = `<!DOCTYPE html><title>IdP error</title><pre>${escapeHtml(JSON.stringify(out, null, 2))}</pre>`;
    },
    // oidc-provider refuses loopback addresses for its outgoing requests (SSRF protection),
    // but back-channel logout must reach a gateway on 127.0.0.1.
    fetch: (url, init) => fetch(url, { ...init, dispatcher: undefined } as RequestInit),
  };
}

function defaultClient(options: IdpOptions): ClientMetadata {
  if (!options.redirectUris?.length) throw new Error('startIdp: give redirectUris (or clients)');
  return {
    client_id: TEST_CLIENT_ID,
    client_secret: TEST_CLIENT_SECRET,
    redirect_uris: options.redirectUris,
    post_logout_redirect_uris: options.postLogoutRedirectUris ?? [],
    grant_types: options.grantTypes ?? ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: options.tokenEndpointAuthMethod ?? 'client_secret_basic',
    // Every login then has an acr and every ID token an acr and an auth_time, as Keycloak's do.
    ...(options.acrValues?.length ? { default_acr_values: [options.acrValues[0] as string], require_auth_time: true } : {}),
    ...(options.clientJwks ? { jwks: options.clientJwks } : {}),
    // oidc-provider puts `sid` in ID tokens (and logout tokens) only when the session is required.
    ...(options.backchannelLogoutUri ? { backchannel_logout_uri: options.backchannelLogoutUri, backchannel_logout_session_required: options.sidClaim ?? true } : {}),
    ...(options.fapi2 ? FAPI2_CLIENT : {}),
  };
}

export function testAccount(sub: string, extra: Readonly<Record<string, unknown>> = {}): Account {
  return {
    accountId: sub,
    claims: () => ({
      ...extra,
      sub,
      name: `Test User ${sub}`,
      given_name: 'Test',
      family_name: `User ${sub}`,
      email: `${sub}@example.test`,
      email_verified: true,
    }),
  };
}

/**
 * Stands in for a login page and a consent page: logs `idp.nextAccount` in, then grants
 * every scope, claim and resource scope the client asked for.
 */
async function autoInteraction(provider: Provider, idp: TestIdp, options: IdpOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const interaction = await provider.interactionDetails(req, res);
  const { prompt, params, session } = interaction;

  if (idp.cancelNext) {
    idp.cancelNext = false;
    await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'The user cancelled the sign-in.' });
    return;
  }
  if (prompt.name === 'login') {
    const asked = typeof params.acr_values === 'string' ? params.acr_values.split(' ').find((acr) => options.acrValues?.includes(acr)) : undefined;
    const acr = idp.nextAcr ?? asked ?? options.acrValues?.[0];
    const ts = Math.floor(Date.now() / 1000) - idp.nextLoginAgeSec;
    await provider.interactionFinished(req, res, { login: { accountId: idp.nextAccount, ts, ...(acr !== undefined ? { acr, amr: ['pwd'] } : {}) } });
    return;
  }
  if (prompt.name !== 'consent') throw new Error(`unexpected prompt ${prompt.name}`);
  if (!session?.accountId) throw new Error('consent prompt without a logged-in account');

  const grant = interaction.grantId ? await provider.Grant.find(interaction.grantId) : new provider.Grant({ accountId: session.accountId, clientId: String(params.client_id) });
  if (!grant) throw new Error(`grant ${interaction.grantId} not found`);

  const missingScope = strings(prompt.details.missingOIDCScope);
  if (missingScope.length > 0) grant.addOIDCScope(missingScope.join(' '));
  const missingClaims = strings(prompt.details.missingOIDCClaims);
  if (missingClaims.length > 0) grant.addOIDCClaims(missingClaims);
  const missingResourceScopes = prompt.details.missingResourceScopes;
  if (missingResourceScopes !== null && typeof missingResourceScopes === 'object') {
    for (const [indicator, scopes] of Object.entries(missingResourceScopes)) {
      grant.addResourceScope(indicator, strings(scopes).join(' '));
    }
  }
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

/**
 * oidc-provider's default prompts, and one more login check: an `acr_values` the IdP session's
 * acr is not among asks for a new login (oidc-provider itself insists only on an essential acr
 * of the `claims` parameter). `max_age` oidc-provider honours on its own.
 */
function stepUpPolicy(): interactionPolicy.DefaultPolicy {
  const policy = interactionPolicy.base();
  policy.get('login')?.checks.add(
    new interactionPolicy.Check('acr_values_unmet', 'the requested authentication context needs a new login', (ctx) => {
      const requested = ctx.oidc.params?.acr_values;
      if (typeof requested !== 'string' || ctx.oidc.result?.login !== undefined || ctx.oidc.session?.accountId === undefined) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      const acr = ctx.oidc.session.acr;
      return acr !== undefined && requested.split(' ').includes(acr) ? interactionPolicy.Check.NO_NEED_TO_PROMPT : interactionPolicy.Check.REQUEST_PROMPT;
    }),
  );
  return policy;
}

/**
 * Renders oidc-provider's logout confirmation as a form that confirms itself ("yes, sign
 * me out of the IdP too"), so RP-initiated logout needs no click; `followRedirects`
 * submits it the way a browser's script would.
 */
async function autoConfirmLogout(ctx: KoaContextWithOIDC, form: string): Promise<void> {
  const confirmed = form.replace('</form>', '<input type="hidden" name="logout" value="yes"/></form>');
  ctx.type = 'html';
  ctx.body = `<!DOCTYPE html><title>Signing out</title>${confirmed}<script>document.forms[0].submit()</script>`;
}

async function loggedOutPage(ctx: KoaContextWithOIDC): Promise<void> {
  ctx.type = 'html';
  ctx.body = '<!DOCTYPE html><title>Signed out</title><p>Signed out of the test IdP.</p>';
}

function countGrant(counts: IdpCounts, ctx: KoaContextWithOIDC): void {
  const grantType = ctx.oidc.params?.grant_type;
  if (grantType === 'authorization_code') counts.authorizationCode += 1;
  else if (grantType === 'refresh_token') {
    counts.refreshToken += 1;
    if (ctx.oidc.params?.resource) counts.resourceRefresh += 1;
  } else if (grantType === 'client_credentials') counts.clientCredentials += 1;
  else if (grantType === TOKEN_EXCHANGE_GRANT) counts.tokenExchange += 1;
}

function resourceServer(audience: string, ttl: number): ResourceServer {
  return { scope: 'api:read api:write', audience, accessTokenTTL: ttl, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
}

type ExchangeParams = { subject_token?: string; subject_token_type?: string; requested_token_type?: string; audience?: string };

/**
 * RFC 8693 token exchange as a resource server's IdP would do it: the subject
 * token must be an access token this IdP issued, still valid and of a grant
 * not revoked (else `invalid_grant`); the new one is an RS256 JWT whose `aud`
 * is the `audience` (else the `resource`), for the same user. The client must
 * be registered with the grant type. `idp.exchange` makes it refuse or fail.
 */
function registerTokenExchange(provider: Provider, idp: TestIdp, dpopOff: boolean): void {
  provider.registerGrantType<ExchangeParams>(
    TOKEN_EXCHANGE_GRANT,
    async (ctx) => {
      const behaviour = idp.exchange;
      if (behaviour.kind === 'fail') throw new Error('test IdP told to fail token exchanges');
      if (behaviour.kind === 'refuse') throw new errors.CustomOIDCProviderError(behaviour.error, 'the test IdP was told to refuse');
      const { subject_token: subjectToken, subject_token_type: subjectType, requested_token_type: requestedType, audience, resource, scope } = ctx.oidc.params;
      if (!subjectToken || subjectType !== ACCESS_TOKEN_TYPE) throw new errors.InvalidRequest('subject_token of type access_token required');
      if (requestedType !== undefined && requestedType !== ACCESS_TOKEN_TYPE) throw new errors.InvalidRequest('only access tokens are issued');
      if (Array.isArray(resource)) throw new errors.InvalidTarget('one resource at most');
      if (!audience && !resource) throw new errors.InvalidTarget('audience or resource required');
      if (resource && idp.unknownResources.has(resource)) throw new errors.InvalidTarget();
      const subject = await provider.AccessToken.find(subjectToken);
      if (!subject || subject.isExpired || !(await provider.Grant.find(subject.grantId))) throw new errors.InvalidGrant('subject token is invalid, expired or revoked');
      const jkt = await exchangeBinding(ctx, subject.jkt, dpopOff);
      const target = audience ?? (resource as string);
      const token = new provider.AccessToken({ accountId: subject.accountId, client: ctx.oidc.client, grantId: subject.grantId, gty: 'token-exchange', ...(scope ? { scope } : {}) });
      token.resourceServer = new provider.ResourceServer(resource ?? `urn:test-idp:audience:${target}`, resourceServer(target, idp.routeTokenTtl));
      if (jkt !== undefined) token.setThumbprint('jkt', jkt);
      ctx.body = {
        access_token: await token.save(),
        issued_token_type: ACCESS_TOKEN_TYPE,
        token_type: jkt === undefined ? 'Bearer' : 'DPoP',
        expires_in: token.expiration,
        ...(scope ? { scope } : {}),
      };
    },
    ['subject_token', 'subject_token_type', 'requested_token_type', 'audience', 'resource', 'scope', 'actor_token', 'actor_token_type'],
  );
}

let sharedKey: { privateKey: KeyObject; jwk: JWK } | undefined;

/** One RSA key per test process: generating one per IdP would cost more than the IdP. */
function testSigningKey(): { privateKey: KeyObject; jwk: JWK } {
  if (sharedKey === undefined) {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = { ...privateKey.export({ format: 'jwk' }), kid: SIGNING_KEY_ID, alg: 'RS256', use: 'sig' } as JWK;
    sharedKey = { privateKey, jwk };
  }
  return sharedKey;
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.removeListener('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function basicAuth(id: string, secret: string): string {
  // RFC 6749 §2.3.1: form-encode each part before joining them.
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
