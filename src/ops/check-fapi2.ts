import { FAPI2_SIGNING_ALGS } from '../config/client-key.ts';
import type { Env } from '../config/env-file.ts';
import type { GatewayConfig } from '../config/types.ts';
import type { ProviderMetadata } from '../oidc/discovery-probe.ts';
import { fapi2Expectations, fapi2MetadataProblems, type Fapi2Expectations } from '../oidc/fapi2.ts';

type Report = (level: 'ok' | 'warn' | 'FAIL', text: string) => void;

/**
 * What `--check` holds the provider to under BFF_PROFILE=fapi2: from the
 * configuration, or from the raw variables when the configuration is invalid,
 * so that the provider's shortcomings are reported with the configuration's
 * in one run. Undefined without the profile.
 */
export function checkFapi2Expectations(config: GatewayConfig | undefined, raw: Env): Fapi2Expectations | undefined {
  if (config) return config.profile === 'fapi2' ? fapi2Expectations(config.dpop.alg, config.clientPrivateKey) : undefined;
  if (raw.BFF_PROFILE?.trim().toLowerCase() !== 'fapi2') return undefined;
  const key = raw.BFF_CLIENT_PRIVATE_KEY?.trim();
  return fapi2Expectations(raw.BFF_DPOP_ALG?.trim() || 'ES256', key?.includes('-----BEGIN PRIVATE KEY-----') ? key : undefined);
}

/**
 * One FAIL line per FAPI 2.0 requirement the provider's metadata misses, or
 * one ok line saying what was verified and what cannot be: the authorization
 * code lifetime (at most 60 s) and refresh token rotation (discouraged) are
 * provider settings that no metadata advertises.
 */
export function reportFapi2(metadata: ProviderMetadata, expected: Fapi2Expectations, config: GatewayConfig | undefined, report: Report): void {
  const problems = fapi2MetadataProblems(metadata, expected);
  for (const problem of problems) report('FAIL', problem);
  if (problems.length === 0) {
    const idTokenAlgs = (metadata.id_token_signing_alg_values_supported ?? []).filter((alg) => (FAPI2_SIGNING_ALGS as readonly string[]).includes(alg));
    report(
      'ok',
      `BFF_PROFILE: the provider advertises what FAPI 2.0 requires (PAR, PKCE S256, RFC 9207 iss, private_key_jwt, DPoP ${expected.dpopAlg}, ID tokens ${idTokenAlgs.join('/')}); ` +
        'its authorization code lifetime (at most 60 s) and refresh token rotation (best off) are not advertised: check them at the provider',
    );
  }
  if (metadata.pushed_authorization_request_endpoint && metadata.require_pushed_authorization_requests !== true) {
    report(
      'warn',
      'BFF_ISSUER_URL: the provider does not advertise require_pushed_authorization_requests: the gateway always uses PAR under BFF_PROFILE=fapi2, but FAPI 2.0 wants the provider to refuse anything else for this client (a client policy may do that without advertising it)',
    );
  }
  if (config && (config.issuerUrl.protocol === 'http:' || config.publicUrl.protocol === 'http:')) {
    report('warn', 'BFF_PROFILE: http on a loopback host (BFF_ISSUER_URL or BFF_PUBLIC_URL) is for local development only; a FAPI 2.0 deployment uses https throughout');
  }
}
