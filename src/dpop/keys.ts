import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject, type webcrypto } from 'node:crypto';
import type { DpopAlg } from '../config/types.ts';

/**
 * A DPoP private key as the session stores it (RFC 7517 JWK with `d`): it
 * lives only inside the encrypted session record or login transaction.
 */
export type DpopPrivateJwk = JsonWebKey & { kty: 'EC' | 'OKP'; crv: 'P-256' | 'Ed25519'; x: string; d: string };

/** A key ready to sign with, imported once and kept in memory (never stored, never logged). */
export interface DpopKey {
  alg: DpopAlg;
  privateKey: KeyObject;
  /** The public JWK, as the proof header carries it. */
  publicJwk: { kty: string; crv: string; x: string; y?: string };
  /** RFC 7638 thumbprint of the public key: what `cnf.jkt` and `dpop_jkt` name. */
  jkt: string;
  /** The proof's protected header, base64url-encoded once per key. */
  encodedHeader: string;
  /** The same key for openid-client (WebCrypto), made on first use at the token endpoint. */
  cryptoKeyPair?: webcrypto.CryptoKeyPair;
}

/** A new key pair for one session (or for the gateway's own tokens). Synchronous: a P-256 or Ed25519 key takes well under a millisecond. */
export function generateDpopKey(alg: DpopAlg): DpopPrivateJwk {
  const { privateKey } = alg === 'EdDSA' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return privateKey.export({ format: 'jwk' }) as DpopPrivateJwk;
}

/** Imports a stored key: the signing key object, its public JWK, thumbprint and proof header. */
export function importDpopKey(jwk: DpopPrivateJwk): DpopKey {
  const privateKey = createPrivateKey({ key: jwk, format: 'jwk' });
  const alg: DpopAlg = jwk.kty === 'OKP' ? 'EdDSA' : 'ES256';
  const publicJwk = jwk.kty === 'EC' ? { kty: 'EC', crv: jwk.crv, x: jwk.x, y: jwk.y as string } : { kty: 'OKP', crv: jwk.crv, x: jwk.x };
  const encodedHeader = Buffer.from(JSON.stringify({ typ: 'dpop+jwt', alg, jwk: publicJwk })).toString('base64url');
  return { alg, privateKey, publicJwk, jkt: jwkThumbprint(publicJwk), encodedHeader };
}

/** RFC 7638: SHA-256 over the required members in lexicographic order. */
export function jwkThumbprint(jwk: { kty: string; crv: string; x: string; y?: string }): string {
  const canonical = jwk.kty === 'EC' ? JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }) : JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x });
  return createHash('sha256').update(canonical).digest('base64url');
}

/** openid-client signs token-endpoint proofs with WebCrypto keys; its public key must be extractable, the private one need not be. */
export function cryptoKeyPairOf(key: DpopKey): webcrypto.CryptoKeyPair {
  if (key.cryptoKeyPair === undefined) {
    const algorithm = key.alg === 'EdDSA' ? { name: 'Ed25519' } : { name: 'ECDSA', namedCurve: 'P-256' };
    key.cryptoKeyPair = {
      privateKey: key.privateKey.toCryptoKey(algorithm, false, ['sign']) as webcrypto.CryptoKey,
      publicKey: createPublicKey(key.privateKey).toCryptoKey(algorithm, true, ['verify']) as webcrypto.CryptoKey,
    };
  }
  return key.cryptoKeyPair;
}

/** Sessions whose keys were imported lately, by thumbprint-free identity (the public `x`/`y`, unique per key). */
const MAX_CACHED_KEYS = 10_000;

/**
 * The session keys in use, imported once each: a proxied request looks its
 * session's key up here instead of parsing it again. Bounded (least recently
 * used first out); a key that fell out is imported again on its next use.
 * Also holds the gateway's own key, made at start-up, for client-credentials
 * tokens.
 */
export class DpopKeys {
  readonly alg: DpopAlg;
  /** The gateway instance's key: client tokens are cached per instance, so each instance binds its own to its own key. */
  readonly gatewayKey: DpopKey;
  private readonly cache = new Map<string, DpopKey>();
  private readonly max: number;

  constructor(alg: DpopAlg, max = MAX_CACHED_KEYS) {
    this.alg = alg;
    this.max = max;
    this.gatewayKey = importDpopKey(generateDpopKey(alg));
  }

  /** A new session's key. */
  generate(): DpopPrivateJwk {
    return generateDpopKey(this.alg);
  }

  /** The imported key for a stored one. */
  load(jwk: DpopPrivateJwk): DpopKey {
    const id = jwk.y === undefined ? jwk.x : `${jwk.x}.${jwk.y}`;
    let key = this.cache.get(id);
    if (key !== undefined) {
      // Most recently used last: the Map's insertion order is the eviction order.
      this.cache.delete(id);
      this.cache.set(id, key);
      return key;
    }
    key = importDpopKey(jwk);
    if (this.cache.size >= this.max) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(id, key);
    return key;
  }
}
