import { clientKeyAlgorithm, FAPI2_SIGNING_ALGS, type Fapi2SigningAlg } from './client-key.ts';
import { DPOP_ALGS, type ClientAuthMethod, type DpopAlg } from './types.ts';

/**
 * The configuration half of BFF_PROFILE=fapi2 (FAPI 2.0 Security Profile):
 * what the gateway's own settings must be before any provider is asked. The
 * provider's half is `src/oidc/fapi2.ts`.
 */

/** Every DPoP algorithm the gateway can be configured with is one FAPI 2.0 allows; a new one that is not fails to compile here. */
export const FAPI2_DPOP_ALGS: readonly Fapi2SigningAlg[] = DPOP_ALGS;

/** What the profile looks at, as loadConfig has read it (values possibly missing when they were invalid). */
export interface Fapi2ConfigInput {
  issuerUrl: URL | undefined;
  publicUrl: URL | undefined;
  allowInsecureIssuer: boolean;
  clientAuthMethod: ClientAuthMethod;
  /** Whether BFF_CLIENT_SECRET (or its _FILE) is set; the value itself is never needed here. */
  clientSecretSet: boolean;
  clientPrivateKey: string | undefined;
  dpop: { enabled: boolean; alg: DpopAlg | string };
}

const PROFILE = 'BFF_PROFILE=fapi2';

/**
 * Every requirement of the profile the configuration misses, each naming its
 * variable. An http issuer or public URL is allowed only on a loopback host
 * and with BFF_ALLOW_INSECURE_ISSUER=true: local development and tests, never
 * a deployment, which FAPI 2.0 requires to use TLS throughout.
 */
export function fapi2ConfigProblems(input: Fapi2ConfigInput): string[] {
  const problems: string[] = [];
  if (input.clientAuthMethod !== 'private_key_jwt') {
    problems.push(`BFF_CLIENT_AUTH_METHOD: ${PROFILE} requires private_key_jwt (client secrets are not allowed by FAPI 2.0); it is ${input.clientAuthMethod}`);
  }
  if (input.clientSecretSet) problems.push(`BFF_CLIENT_SECRET: must not be set under ${PROFILE} (client secrets are not allowed by FAPI 2.0; remove it and use BFF_CLIENT_PRIVATE_KEY)`);
  if (input.clientAuthMethod === 'private_key_jwt' && input.clientPrivateKey !== undefined && input.clientPrivateKey.includes('-----BEGIN PRIVATE KEY-----')) {
    const key = clientKeyAlgorithm(input.clientPrivateKey, 'fapi2');
    if ('problem' in key) problems.push(key.problem);
  }
  if (!input.dpop.enabled) problems.push(`BFF_DPOP: ${PROFILE} requires sender-constrained tokens: set BFF_DPOP=true`);
  if (!(FAPI2_SIGNING_ALGS as readonly string[]).includes(input.dpop.alg)) problems.push(`BFF_DPOP_ALG: ${PROFILE} allows only ${FAPI2_SIGNING_ALGS.join(', ')}`);
  if (input.issuerUrl?.protocol === 'http:' && input.allowInsecureIssuer && !isLoopback(input.issuerUrl)) {
    problems.push(`BFF_ISSUER_URL: ${PROFILE} requires https (FAPI 2.0 requires TLS); BFF_ALLOW_INSECURE_ISSUER is honoured under the profile only for a loopback issuer (local development)`);
  }
  if (input.publicUrl?.protocol === 'http:' && !isLoopback(input.publicUrl)) {
    problems.push(`BFF_PUBLIC_URL: ${PROFILE} requires https (the redirect URI must use TLS); http is allowed under the profile only on a loopback host (local development)`);
  }
  return problems;
}

/** localhost, 127.0.0.0/8 or ::1: traffic that never leaves the machine. */
export function isLoopback(url: URL): boolean {
  const host = url.hostname;
  return host === 'localhost' || host === '[::1]' || /^127(?:\.\d{1,3}){3}$/.test(host);
}
