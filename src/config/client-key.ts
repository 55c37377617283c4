import { createPrivateKey } from 'node:crypto';
import type { SecurityProfile } from './types.ts';

/** JWS algorithms FAPI 2.0 (Security Profile §5.4.1) allows for every signature: client assertions, DPoP proofs, ID tokens. */
export const FAPI2_SIGNING_ALGS = ['PS256', 'ES256', 'EdDSA'] as const;
export type Fapi2SigningAlg = (typeof FAPI2_SIGNING_ALGS)[number];

/** FAPI 2.0 §5.4.1: RSA keys shall be at least 2048 bits. */
const FAPI2_MIN_RSA_BITS = 2048;

/** The algorithm the gateway signs its client assertions with, or why this key cannot sign them (naming the variable, never the key). */
export type ClientKeyAlgorithm = { alg: string } | { problem: string };

/**
 * Which JWS algorithm `private_key_jwt` assertions use for this key. Without a
 * profile an RSA key signs RS256, as it always did (clients are registered
 * with it); under `fapi2` PS256, the only RSA algorithm FAPI 2.0 allows, and
 * only curves and key sizes it allows at all.
 */
export function clientKeyAlgorithm(pem: string, profile: SecurityProfile): ClientKeyAlgorithm {
  let key;
  try {
    key = createPrivateKey(pem);
  } catch {
    return { problem: 'BFF_CLIENT_PRIVATE_KEY: not a readable PKCS#8 private key' };
  }
  const fapi2 = profile === 'fapi2';
  const refused = (what: string): ClientKeyAlgorithm => ({
    problem: `BFF_CLIENT_PRIVATE_KEY: ${what} is not allowed under BFF_PROFILE=fapi2 (use RSA of at least ${FAPI2_MIN_RSA_BITS} bits for PS256, EC P-256 for ES256 or Ed25519 for EdDSA)`,
  });
  switch (key.asymmetricKeyType) {
    case 'rsa': {
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
      if (!fapi2) return { alg: 'RS256' };
      return bits >= FAPI2_MIN_RSA_BITS ? { alg: 'PS256' } : refused(`an RSA key of ${bits} bits`);
    }
    case 'ed25519':
      return { alg: 'EdDSA' };
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === 'prime256v1') return { alg: 'ES256' };
      const alg = curve === 'secp384r1' ? 'ES384' : curve === 'secp521r1' ? 'ES512' : undefined;
      if (alg === undefined) break;
      return fapi2 ? refused(`an EC key on ${curve} (${alg})`) : { alg };
    }
  }
  return { problem: 'BFF_CLIENT_PRIVATE_KEY: unsupported key type (use RSA, EC P-256/384/521 or Ed25519)' };
}
