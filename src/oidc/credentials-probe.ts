import { randomBytes } from 'node:crypto';
import * as client from 'openid-client';
import type { GatewayConfig } from '../config/types.ts';
import { classifyIdpError } from './classify.ts';
import { clientAuthentication } from './client-auth.ts';
import { isClientRefusal, safeDescription } from './errors.ts';

/** What the token endpoint made of the gateway's client credentials. */
export type CredentialsVerdict =
  /** It authenticated the client and then refused the code (`invalid_grant`): the credentials are good. */
  | { kind: 'accepted' }
  /** It refused the client itself (`invalid_client`, `unauthorized_client`, a 401). */
  | { kind: 'refused'; error: string; status: number | undefined; description: string | undefined }
  /** No answer, a 5xx or a 429. */
  | { kind: 'unreachable'; reason: string }
  /** Some other answer, which proves neither (`invalid_request`, a non-JSON 400, ...). */
  | { kind: 'inconclusive'; reason: string; description?: string }
  /** The configured credentials cannot even be used (an unusable private key). */
  | { kind: 'unusable'; reason: string };

/**
 * Proves the client credentials at the token endpoint without side effects:
 * an authorization-code grant for a code that cannot exist, sent with the
 * configured client authentication (any method) and redirect URI. A provider
 * authenticates the client before it looks at the code, so `invalid_grant`
 * means the credentials were accepted and `invalid_client` (or a 401) that
 * they were not; no code exists, so nothing is issued either way.
 */
export async function probeClientCredentials(config: GatewayConfig, metadata: client.ServerMetadata, timeoutMs: number): Promise<CredentialsVerdict> {
  let auth: client.ClientAuth;
  try {
    auth = await clientAuthentication(config);
  } catch (err) {
    return { kind: 'unusable', reason: err instanceof Error ? err.message : 'unusable client credentials' };
  }
  const configuration = new client.Configuration(metadata, config.clientId, config.clientSecret, auth);
  configuration.timeout = Math.max(1, Math.ceil(timeoutMs / 1000));
  if (new URL(metadata.token_endpoint ?? metadata.issuer).protocol === 'http:') client.allowInsecureRequests(configuration);
  try {
    await client.genericGrantRequest(configuration, 'authorization_code', {
      code: `bff-check-${randomBytes(16).toString('base64url')}`,
      redirect_uri: config.redirectUri,
      // Providers that require PKCE may look for a verifier before they look the code up.
      code_verifier: client.randomPKCECodeVerifier(),
    });
  } catch (err) {
    const failure = await classifyIdpError(err, 'token');
    if (failure.kind === 'unavailable') return { kind: 'unreachable', reason: failure.status === undefined ? failure.reason : `HTTP ${failure.status}` };
    if (failure.kind === 'invalid_response') return { kind: 'inconclusive', reason: failure.status === undefined ? failure.reason : `${failure.reason}, HTTP ${failure.status}` };
    if (failure.error === 'invalid_grant') return { kind: 'accepted' };
    const description = safeDescription(failure.errorDescription);
    if (isClientRefusal(failure)) return { kind: 'refused', error: failure.error, status: failure.status, description };
    return { kind: 'inconclusive', reason: failure.status === undefined ? failure.error : `${failure.error}, HTTP ${failure.status}`, ...(description ? { description } : {}) };
  }
  return { kind: 'inconclusive', reason: 'the provider issued tokens for a code that cannot exist' };
}
