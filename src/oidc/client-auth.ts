import { importPKCS8 } from 'jose';
import * as client from 'openid-client';
import { clientKeyAlgorithm } from '../config/client-key.ts';
import type { GatewayConfig } from '../config/types.ts';

/** The token-endpoint client authentication chosen by `BFF_CLIENT_AUTH_METHOD`. */
export async function clientAuthentication(config: GatewayConfig): Promise<client.ClientAuth> {
  switch (config.clientAuthMethod) {
    case 'client_secret_post':
      return client.ClientSecretPost(config.clientSecret);
    case 'private_key_jwt': {
      const pem = config.clientPrivateKey as string;
      // Under BFF_PROFILE=fapi2 an RSA key signs PS256, not RS256 (FAPI 2.0 allows PS256, ES256 and EdDSA only).
      const algorithm = clientKeyAlgorithm(pem, config.profile);
      if ('problem' in algorithm) throw new Error(algorithm.problem);
      const key = await importPKCS8(pem, algorithm.alg);
      return client.PrivateKeyJwt(key);
    }
    case 'client_secret_basic':
      return client.ClientSecretBasic(config.clientSecret);
  }
}
