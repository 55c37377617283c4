import { randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, EmbeddedJWK, jwtVerify } from 'jose';
import { errors, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';

/** How the test IdP treats DPoP (RFC 9449). oidc-provider 9 has it on by default. */
export type IdpDpopOptions = {
  /** Demand an IdP-provided nonce in every proof (the `use_dpop_nonce` round trip); default false. */
  requireNonce?: boolean;
  /** An IdP without DPoP: proofs are ignored and plain Bearer tokens issued. */
  off?: boolean;
};

type DpopFeature = NonNullable<NonNullable<Configuration['features']>['dPoP']>;

/** One nonce secret per test process: what matters is that the IdP demands nonces, not which. */
const NONCE_SECRET = randomBytes(32);

export function dpopFeature(options: IdpDpopOptions = {}): DpopFeature {
  if (options.off) return { enabled: false };
  return options.requireNonce ? { enabled: true, nonceSecret: NONCE_SECRET, requireNonce: () => true } : { enabled: true };
}

/**
 * The token-exchange grant is the test IdP's own (oidc-provider has none), so
 * it binds its tokens itself, as oidc-provider's grants do: a proof on the
 * request (signature checked against its embedded key, htm/htu) binds the new
 * token to that key, and a subject token bound to another key is refused.
 * Returns the thumbprint, or undefined when the request carries no proof.
 */
export async function exchangeBinding(ctx: KoaContextWithOIDC, subjectJkt: string | undefined, off: boolean): Promise<string | undefined> {
  const proof = ctx.get('dpop');
  if (off || !proof) {
    if (subjectJkt !== undefined) throw new errors.InvalidGrant('the subject token is DPoP-bound: a proof is required');
    return undefined;
  }
  const { payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', maxTokenAge: 60 }).catch(() => {
    throw new errors.InvalidDpopProof('invalid DPoP proof');
  });
  if (payload.htm !== 'POST' || payload.htu !== `${ctx.oidc.issuer}/token`) throw new errors.InvalidDpopProof('htm or htu mismatch');
  const jkt = await calculateJwkThumbprint(protectedHeader.jwk as Parameters<typeof calculateJwkThumbprint>[0]);
  if (subjectJkt !== undefined && subjectJkt !== jkt) throw new errors.InvalidGrant('the subject token is bound to another key');
  return jkt;
}
