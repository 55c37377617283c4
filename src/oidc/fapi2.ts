import { decodeProtectedHeader } from 'jose';
import type * as client from 'openid-client';
import { clientKeyAlgorithm, FAPI2_SIGNING_ALGS } from '../config/client-key.ts';
import type { GatewayConfig } from '../config/types.ts';
import { IdpInvalidResponseError } from './errors.ts';

/**
 * The provider half of BFF_PROFILE=fapi2 (FAPI 2.0 Security Profile): what
 * the discovery document must advertise, and the checks the gateway adds to
 * each login under the profile. The configuration half is `src/config/fapi2.ts`.
 */

/** What the profile expects of the provider, from the gateway's configuration. */
export interface Fapi2Expectations {
  /** BFF_DPOP_ALG: the provider must accept DPoP proofs signed with it. */
  dpopAlg: string;
  /** The client assertion's algorithm (from BFF_CLIENT_PRIVATE_KEY), when the key is usable. */
  clientAssertionAlg?: string;
}

const PROFILE = 'BFF_PROFILE=fapi2';

/** Every FAPI 2.0 requirement the provider's discovery document does not meet, each naming the variable and the metadata member. */
export function fapi2MetadataProblems(metadata: client.ServerMetadata, expected: Fapi2Expectations): string[] {
  const problems: string[] = [];
  const lacks = (member: string, what: string, variable = 'BFF_ISSUER_URL'): void => {
    problems.push(`${variable}: the provider's ${member} ${what}, which ${PROFILE} requires`);
  };
  if (!metadata.pushed_authorization_request_endpoint) lacks('pushed_authorization_request_endpoint', 'is not advertised: no pushed authorization requests (PAR, RFC 9126)');
  if (!metadata.code_challenge_methods_supported?.includes('S256')) lacks('code_challenge_methods_supported', 'does not include S256 (PKCE)');
  if (metadata.authorization_response_iss_parameter_supported !== true) lacks('authorization_response_iss_parameter_supported', 'is not true (iss in the authorization response, RFC 9207)');
  // RFC 8414: absent means client_secret_basic only.
  if (!metadata.token_endpoint_auth_methods_supported?.includes('private_key_jwt')) lacks('token_endpoint_auth_methods_supported', 'does not include private_key_jwt');
  const assertionAlgs = metadata.token_endpoint_auth_signing_alg_values_supported;
  if (expected.clientAssertionAlg !== undefined && assertionAlgs !== undefined && !assertionAlgs.includes(expected.clientAssertionAlg)) {
    lacks('token_endpoint_auth_signing_alg_values_supported', `does not include ${expected.clientAssertionAlg} (the algorithm of the client key)`, 'BFF_CLIENT_PRIVATE_KEY');
  }
  const dpopAlgs = metadata.dpop_signing_alg_values_supported;
  if (!Array.isArray(dpopAlgs)) lacks('dpop_signing_alg_values_supported', 'is not advertised: no DPoP (RFC 9449)');
  else if (!dpopAlgs.includes(expected.dpopAlg)) lacks('dpop_signing_alg_values_supported', `does not include ${expected.dpopAlg}`, 'BFF_DPOP_ALG');
  const idTokenAlgs = metadata.id_token_signing_alg_values_supported ?? [];
  if (!FAPI2_SIGNING_ALGS.some((alg) => idTokenAlgs.includes(alg))) lacks('id_token_signing_alg_values_supported', `includes none of ${FAPI2_SIGNING_ALGS.join(', ')} (ID token signatures)`);
  return problems;
}

/** The provider fails the profile: the gateway does not run against it (exit 1), and names every requirement it misses. */
export class Fapi2RefusedError extends Error {
  readonly code = 'fapi2_provider_refused';
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`the OpenID provider does not meet the FAPI 2.0 profile (${PROFILE}):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.problems = problems;
  }
}

/**
 * RFC 9207 under the profile: the authorization response must carry `iss`.
 * openid-client requires it only when the provider advertises support, which
 * the metadata check has already insisted on; this holds even if it did not.
 */
export function requireIssParameter(callbackQuery: string): void {
  if (!new URLSearchParams(callbackQuery).has('iss')) throw new IdpInvalidResponseError('fapi2_iss_missing');
}

/**
 * openid-client accepts an ID token signed with any algorithm the provider
 * advertises (RS256 included); under the profile only PS256, ES256 and EdDSA
 * are accepted. Its signature and claims openid-client has already checked.
 */
export function requireFapi2IdTokenAlg(idToken: string | undefined): void {
  if (idToken === undefined) throw new IdpInvalidResponseError('no_id_token');
  let alg: unknown;
  try {
    alg = decodeProtectedHeader(idToken).alg;
  } catch {
    throw new IdpInvalidResponseError('fapi2_id_token_alg');
  }
  if (typeof alg !== 'string' || !(FAPI2_SIGNING_ALGS as readonly string[]).includes(alg)) throw new IdpInvalidResponseError('fapi2_id_token_alg');
}

/** The expectations from BFF_DPOP_ALG and BFF_CLIENT_PRIVATE_KEY. */
export function fapi2Expectations(dpopAlg: string, clientPrivateKey: string | undefined): Fapi2Expectations {
  const key = clientPrivateKey === undefined ? undefined : clientKeyAlgorithm(clientPrivateKey, 'fapi2');
  return { dpopAlg, ...(key !== undefined && 'alg' in key ? { clientAssertionAlg: key.alg } : {}) };
}

/** Under BFF_PROFILE=fapi2, why the gateway must not run against this provider; undefined when it may (or without the profile). */
export function fapi2Refusal(config: GatewayConfig, metadata: client.ServerMetadata): Fapi2RefusedError | undefined {
  if (config.profile !== 'fapi2') return undefined;
  const problems = fapi2MetadataProblems(metadata, fapi2Expectations(config.dpop.alg, config.clientPrivateKey));
  return problems.length === 0 ? undefined : new Fapi2RefusedError(problems);
}
