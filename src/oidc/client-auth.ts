import { createPrivateKey } from 'node:crypto';
import { importPKCS8 } from 'jose';
import * as client from 'openid-client';
import type { GatewayConfig } from '../config/types.ts';

/** The token-endpoint client authentication chosen by `BFF_CLIENT_AUTH_METHOD`. */
export async function clientAuthentication(config: GatewayConfig): Promise<client.ClientAuth> {
  switch (config.clientAuthMethod) {
    case 'client_secret_post':
      return client.ClientSecretPost(config.clientSecret);
    case 'private_key_jwt': {
      const pem = config.clientPrivateKey as string;
      const key = await importPKCS8(pem, signingAlgorithm(pem));
      return client.PrivateKeyJwt(key);
    }
    case 'client_secret_basic':
      return client.ClientSecretBasic(config.clientSecret);
  }
}

function signingAlgorithm(pem: string): string {
  const key = createPrivateKey(pem);
  if (key.asymmetricKeyType === 'rsa') return 'RS256';
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA';
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return 'ES256';
    if (curve === 'secp384r1') return 'ES384';
    if (curve === 'secp521r1') return 'ES512';
  }
  throw new Error('BFF_CLIENT_PRIVATE_KEY: unsupported key type (use RSA, EC P-256/384/521 or Ed25519)');
}
