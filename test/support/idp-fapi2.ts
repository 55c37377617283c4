import { generateKeyPairSync } from 'node:crypto';
import type { ClientMetadata, Configuration, JWK, KoaContextWithOIDC } from 'oidc-provider';

/**
 * The test IdP's FAPI 2.0 configuration (option `fapi2`), kept apart from
 * idp.ts: oidc-provider's FAPI 2.0 profile, DPoP, PAR required, an ES256 key
 * that signs the client's ID tokens (the IdP's RS256 key stays, for
 * everything else), and the default client on private_key_jwt with
 * DPoP-bound access tokens.
 */

type Features = NonNullable<Configuration['features']>;

export function fapi2Features(par: boolean): Pick<Features, 'fapi' | 'dPoP' | 'pushedAuthorizationRequests'> {
  return {
    fapi: { enabled: true, profile: '2.0' },
    dPoP: { enabled: true },
    pushedAuthorizationRequests: { enabled: par, requirePushedAuthorizationRequests: par },
  };
}

/** Goes over the default client's registration: the test must give `clientJwks` (an RSA key signs PS256, a P-256 key ES256). */
export const FAPI2_CLIENT: Partial<ClientMetadata> = {
  token_endpoint_auth_method: 'private_key_jwt',
  id_token_signed_response_alg: 'ES256',
  dpop_bound_access_tokens: true,
};

let sharedKey: JWK | undefined;

/** One ES256 signing key per test process, as for the RS256 one. */
export function fapi2SigningJwk(): JWK {
  if (sharedKey === undefined) {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    sharedKey = { ...privateKey.export({ format: 'jwk' }), kid: 'test-idp-es256', alg: 'ES256', use: 'sig' } as JWK;
  }
  return sharedKey;
}

/**
 * Plays a provider that advertises less (or else) than oidc-provider does:
 * each member given replaces the discovery document's, `undefined` removes it.
 */
export function overrideDiscovery(overrides: Readonly<Record<string, unknown>>) {
  return async (ctx: KoaContextWithOIDC, next: () => Promise<void>): Promise<void> => {
    await next();
    if (ctx.path !== '/.well-known/openid-configuration' || typeof ctx.body !== 'object' || ctx.body === null) return;
    const body = ctx.body as Record<string, unknown>;
    for (const [member, value] of Object.entries(overrides)) {
      if (value === undefined) delete body[member];
      else body[member] = value;
    }
  };
}
