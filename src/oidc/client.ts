import type { Logger } from 'pino';
import * as client from 'openid-client';
import { userTokenResource, type GatewayConfig } from '../config/types.ts';
import type { ExchangeTarget, TokenSet } from './token-set.ts';
import { tokenSet, withResources } from './token-response.ts';
import { classifyIdpError } from './classify.ts';
import { clientAuthentication } from './client-auth.ts';
import { fapi2Refusal, requireFapi2IdTokenAlg, requireIssParameter, type Fapi2RefusedError } from './fapi2.ts';
import { IdpInvalidResponseError, IdpUnavailableError } from './errors.ts';
import { asIdpFailure, describe } from './failure.ts';
export { describe } from './failure.ts';
import { acrFault, authTimeFault, StepUpNotSatisfiedError } from './step-up-checks.ts';
import { DpopKeys, type DpopPrivateJwk } from '../dpop/keys.ts';
import { DpopHandles, requireDpopBound } from './dpop.ts';
import type { LoginChecks, LoginOptions, LoginResult } from './login-types.ts';
import { sessionClaims } from './session-claims.ts';

type TokenResponse = client.TokenEndpointResponse & client.TokenEndpointResponseHelpers;
const MAX_RETRY_DELAY_MS = 30_000;
/** RFC 8693 §2.1 and §3. */
const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
/** openid-client's timeout is in seconds. */
const IDP_TIMEOUT_SEC = 10;

/**
 * The gateway's OpenID client. Discovery runs in the background and is
 * retried with backoff, so the gateway starts while the IdP is down and
 * readiness recovers without traffic. Every method that asks the IdP rejects
 * only with the gateway's own IdP errors (`./errors.ts`), never with
 * openid-client's.
 */
export class OidcClient {
  private readonly config: GatewayConfig;
  private readonly logger: Logger;
  private configuration: client.Configuration | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private closed = false;
  /** Replaces the global fetch for every request to the IdP (the gateway times them for its metrics). */
  private readonly fetch: client.CustomFetch | undefined;
  /**
   * RFC 8707 resources that routes bind the user's token to: named at login,
   * since an IdP may refuse (oidc-provider does) a refresh-token grant for a
   * resource that the authorization request did not name.
   */
  private readonly resources: readonly string[];
  /** Set when the provider fails BFF_PROFILE's requirements: its metadata is never used, and discovery stops. */
  refusal: Fapi2RefusedError | undefined;
  private readonly onRefused: ((refusal: Fapi2RefusedError) => void) | undefined;
  /** `BFF_DPOP=true`: every token request carries a proof, and only DPoP-bound tokens are accepted. */
  readonly dpop: DpopHandles | undefined;

  constructor(config: GatewayConfig, logger: Logger, fetch?: client.CustomFetch, onRefused?: (refusal: Fapi2RefusedError) => void) {
    this.config = config;
    this.onRefused = onRefused;
    this.resources = [...new Set(config.routes.map(userTokenResource).filter((resource) => resource !== undefined))];
    this.logger = logger;
    this.fetch = fetch;
    this.dpop = config.dpop.enabled ? new DpopHandles(new DpopKeys(config.dpop.alg)) : undefined;
  }

  /** Starts discovery; resolves after the first attempt, whatever its outcome. */
  async start(): Promise<void> {
    await this.discover();
  }

  get ready(): boolean {
    return this.configuration !== undefined;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
  }

  private async discover(): Promise<void> {
    if (this.closed) return;
    try {
      const options: client.DiscoveryRequestOptions = { timeout: IDP_TIMEOUT_SEC };
      if (this.config.issuerUrl.protocol === 'http:' && this.config.allowInsecureIssuer) options.execute = [client.allowInsecureRequests];
      if (this.fetch) options[client.customFetch] = this.fetch;
      const configuration = await client.discovery(this.config.issuerUrl, this.config.clientId, this.config.clientSecret, await clientAuthentication(this.config), options);
      configuration.timeout = IDP_TIMEOUT_SEC;
      if (this.fetch) configuration[client.customFetch] = this.fetch;
      // A provider that fails the profile stays unused (not ready) and is not asked again: its metadata will not change by retrying.
      this.refusal = fapi2Refusal(this.config, configuration.serverMetadata());
      if (this.refusal) {
        for (const requirement of this.refusal.problems) this.logger.fatal({ issuer: this.config.issuerUrl.href, requirement }, 'the OpenID provider does not meet BFF_PROFILE=fapi2');
        this.onRefused?.(this.refusal);
        return;
      }
      this.configuration = configuration;
      this.attempt = 0;
      this.logger.info({ issuer: configuration.serverMetadata().issuer }, 'OpenID provider metadata loaded');
    } catch (err) {
      const delay = Math.min(1000 * 2 ** this.attempt, MAX_RETRY_DELAY_MS);
      this.attempt++;
      this.logger.warn({ issuer: this.config.issuerUrl.href, reason: describe(err), retryInMs: delay }, 'OpenID provider discovery failed; retrying');
      if (!this.closed) {
        this.retryTimer = setTimeout(() => void this.discover(), delay);
        this.retryTimer.unref();
      }
    }
  }

  private current(): client.Configuration {
    if (!this.configuration) throw new IdpUnavailableError();
    return this.configuration;
  }

  /** Builds the authorization request (pushed when the IdP supports PAR) with PKCE S256, state and nonce. */
  startLogin(options: LoginOptions): Promise<{ url: string; checks: LoginChecks }> {
    return asIdpFailure('par', () => this.buildLogin(options));
  }

  private async buildLogin(options: LoginOptions): Promise<{ url: string; checks: LoginChecks }> {
    const configuration = this.current();
    const checks: LoginChecks = {
      state: client.randomState(),
      nonce: client.randomNonce(),
      codeVerifier: client.randomPKCECodeVerifier(),
      ...(options.acrValues !== undefined ? { acrValues: options.acrValues } : {}),
      ...(options.maxAge !== undefined ? { maxAge: options.maxAge } : {}),
      ...(this.dpop ? { dpopKey: this.dpop.keys.generate() } : {}),
    };
    const parameters: Record<string, string> = {
      redirect_uri: this.config.redirectUri,
      scope: this.config.scopes,
      state: checks.state,
      nonce: checks.nonce,
      code_challenge: await client.calculatePKCECodeChallenge(checks.codeVerifier),
      code_challenge_method: 'S256',
    };
    if (options.prompt) parameters.prompt = options.prompt;
    if (options.acrValues !== undefined) parameters.acr_values = options.acrValues;
    if (options.maxAge !== undefined) parameters.max_age = String(options.maxAge);
    // RFC 9449 §10: the code is bound to the key, so that only this key can redeem it (PAR also carries a proof).
    if (checks.dpopKey) parameters.dpop_jkt = (this.dpop as DpopHandles).keys.load(checks.dpopKey).jkt;
    const request = withResources(parameters, this.resources);
    // Under the profile always PAR: openid-client refuses rather than falling back to a front-channel request.
    const url =
      this.config.profile === 'fapi2' || configuration.serverMetadata().pushed_authorization_request_endpoint
        ? await client.buildAuthorizationUrlWithPAR(configuration, request, this.proofs(configuration, checks.dpopKey))
        : client.buildAuthorizationUrl(configuration, request);
    return { url: url.href, checks };
  }

  /**
   * Validates the authorization response (state, `iss` per RFC 9207 when the
   * IdP supports it, error responses), exchanges the code with client
   * authentication and the PKCE verifier, and validates the ID token.
   */
  finishLogin(callbackQuery: string, checks: LoginChecks): Promise<LoginResult> {
    return asIdpFailure('token', () => this.exchangeCode(callbackQuery, checks));
  }

  private async exchangeCode(callbackQuery: string, checks: LoginChecks): Promise<LoginResult> {
    const configuration = this.current();
    // Built from the configured redirect URI, never from the request: behind TLS termination the request's scheme and host differ.
    const currentUrl = new URL(this.config.redirectUri);
    currentUrl.search = callbackQuery;
    const fapi2 = this.config.profile === 'fapi2';
    if (fapi2) requireIssParameter(callbackQuery);
    const proofs = this.proofs(configuration, checks.dpopKey);
    let response;
    try {
      response = await client.authorizationCodeGrant(
        configuration,
        currentUrl,
        {
          pkceCodeVerifier: checks.codeVerifier,
          expectedState: checks.state,
          expectedNonce: checks.nonce,
          idTokenExpected: true,
          // A step-up's max_age: openid-client then requires auth_time and checks its age (with its 30 s clock tolerance).
          ...(checks.maxAge !== undefined ? { maxAge: checks.maxAge } : {}),
        },
        undefined,
        proofs,
      );
    } catch (err) {
      const fault = authTimeFault(err, checks.maxAge);
      throw fault === undefined ? err : new StepUpNotSatisfiedError(fault);
    }
    if (fapi2) requireFapi2IdTokenAlg(response.id_token);
    this.bound(response);
    const idClaims = response.claims();
    if (!idClaims) throw new IdpInvalidResponseError('no_id_token');
    const acrMismatch = acrFault(checks.acrValues, idClaims.acr);
    if (acrMismatch) throw new StepUpNotSatisfiedError(acrMismatch);
    let userinfo: Record<string, unknown> | undefined;
    if (configuration.serverMetadata().userinfo_endpoint) {
      try {
        userinfo = await client.fetchUserInfo(configuration, response.access_token, idClaims.sub, proofs);
      } catch (err) {
        this.logger.warn({ reason: describe(await classifyIdpError(err, 'userinfo')) }, 'userinfo request failed; using the ID token claims only');
      }
    }
    return {
      tokens: tokenSet(response),
      sub: idClaims.sub,
      claims: sessionClaims(idClaims, userinfo),
      ...(typeof idClaims.sid === 'string' ? { idpSid: idClaims.sid } : {}),
      ...(typeof idClaims.acr === 'string' ? { acr: idClaims.acr } : {}),
      ...(typeof idClaims.auth_time === 'number' ? { authTime: idClaims.auth_time } : {}),
    };
  }

  /**
   * Refresh-token grant. A response without a new refresh token keeps the
   * old one; with rotation the new one replaces it.
   */
  refresh(refreshToken: string, resource?: string, dpopKey?: DpopPrivateJwk): Promise<TokenSet> {
    return this.tokenRequest(dpopKey, (configuration, proofs) => client.refreshTokenGrant(configuration, refreshToken, resource === undefined ? undefined : { resource }, proofs));
  }

  /** RFC 8693: the user's access token exchanged for one meant for `target`, with the gateway's client authentication. */
  exchange(subjectToken: string, target: ExchangeTarget, dpopKey?: DpopPrivateJwk): Promise<TokenSet> {
    const parameters: Record<string, string> = { subject_token: subjectToken, subject_token_type: ACCESS_TOKEN_TYPE, requested_token_type: ACCESS_TOKEN_TYPE };
    if (target.audience !== undefined) parameters.audience = target.audience;
    if (target.resource !== undefined) parameters.resource = target.resource;
    if (target.scope !== undefined) parameters.scope = target.scope;
    return this.tokenRequest(dpopKey, (configuration, proofs) => client.genericGrantRequest(configuration, TOKEN_EXCHANGE_GRANT, parameters, proofs));
  }

  /** The gateway's own token (client-credentials grant). */
  clientCredentials(parameters: Record<string, string>): Promise<TokenSet> {
    // No session, no session key: the gateway instance's own key (src/dpop/keys.ts).
    return this.tokenRequest(undefined, (configuration, proofs) => client.clientCredentialsGrant(configuration, parameters, proofs));
  }

  /** A token request, with a DPoP proof under `BFF_DPOP=true` (whose answer must then be a DPoP-bound token). */
  private tokenRequest(dpopKey: DpopPrivateJwk | undefined, request: (configuration: client.Configuration, proofs?: client.DPoPOptions) => Promise<TokenResponse>): Promise<TokenSet> {
    return asIdpFailure('token', async () => {
      const configuration = this.current();
      return tokenSet(this.bound(await request(configuration, this.proofs(configuration, dpopKey))));
    });
  }

  /** The DPoP option of a token request, under `BFF_DPOP=true`: signed with the session's key, else the gateway's. */
  private proofs(configuration: client.Configuration, dpopKey: DpopPrivateJwk | undefined): client.DPoPOptions | undefined {
    return this.dpop?.options(configuration, dpopKey);
  }

  private bound(response: TokenResponse): TokenResponse {
    return this.dpop ? requireDpopBound(response) : response;
  }

  /** The IdP's issuer identifier and JWKS URI, once discovery succeeded. */
  metadata(): { issuer: string; jwksUri?: string; signingAlgs?: string[] } {
    const metadata = this.current().serverMetadata();
    return {
      issuer: metadata.issuer,
      ...(metadata.jwks_uri ? { jwksUri: metadata.jwks_uri } : {}),
      ...(metadata.id_token_signing_alg_values_supported ? { signingAlgs: metadata.id_token_signing_alg_values_supported } : {}),
    };
  }

  /** RFC 7009; a no-op when the IdP has no revocation endpoint. */
  revokeRefreshToken(refreshToken: string): Promise<void> {
    return asIdpFailure('revocation', async () => {
      const configuration = this.current();
      if (!configuration.serverMetadata().revocation_endpoint) return;
      await client.tokenRevocation(configuration, refreshToken, { token_type_hint: 'refresh_token' });
    });
  }

  /** Where the browser goes after logout: the IdP's end-session endpoint when it has one. */
  endSessionUrl(idToken: string | undefined): string {
    const configuration = this.configuration;
    if (!configuration?.serverMetadata().end_session_endpoint) return this.config.postLogoutRedirectUrl;
    const parameters: Record<string, string> = {
      post_logout_redirect_uri: this.config.postLogoutRedirectUrl,
      client_id: this.config.clientId,
    };
    if (idToken) parameters.id_token_hint = idToken;
    return client.buildEndSessionUrl(configuration, parameters).href;
  }
}
