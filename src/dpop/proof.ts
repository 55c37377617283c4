import { createHash, randomUUID, sign } from 'node:crypto';
import type { DpopKey } from './keys.ts';

/**
 * A DPoP proof (RFC 9449 §4.2) for one upstream request: `htm`, `htu` (the
 * URL without query and fragment), `iat`, a unique `jti`, `ath` (the access
 * token's SHA-256) and the resource server's `nonce` when it gave one. Signed
 * with node:crypto on the imported key and a header encoded once per key: one
 * signature per request is all the hot path pays.
 */
export function dpopProof(key: DpopKey, htm: string, htu: string, accessToken: string, nonce?: string): string {
  const payload = {
    // A version 4 UUID, as RFC 9449 §4.2 allows: randomUUID draws from a batch of random bytes,
    // where randomBytes(16) per proof cost about a tenth of a DPoP gateway's CPU under load.
    jti: randomUUID(),
    htm,
    htu,
    iat: Math.floor(Date.now() / 1000),
    ath: createHash('sha256').update(accessToken).digest('base64url'),
    ...(nonce !== undefined ? { nonce } : {}),
  };
  const signingInput = `${key.encodedHeader}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  // JWS wants ES256 signatures as r || s (IEEE P1363), not DER; Ed25519 takes no digest name.
  const signature = key.alg === 'EdDSA' ? sign(null, Buffer.from(signingInput), key.privateKey) : sign('sha256', Buffer.from(signingInput), { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  return `${signingInput}.${signature.toString('base64url')}`;
}

/** Per resource-server origin, the latest `DPoP-Nonce` it sent (RFC 9449 §9), so that most requests need no retry. */
export class DpopNonces {
  private readonly latest = new Map<string, string>();
  private static readonly MAX_ORIGINS = 1000;

  get(origin: string): string | undefined {
    return this.latest.get(origin);
  }

  set(origin: string, nonce: string): void {
    if (this.latest.get(origin) === nonce) return;
    if (!this.latest.has(origin) && this.latest.size >= DpopNonces.MAX_ORIGINS) this.latest.delete(this.latest.keys().next().value as string);
    this.latest.set(origin, nonce);
  }
}

/** RFC 9449 §9: the resource server's challenge to retry with its nonce. */
export function asksForNonce(wwwAuthenticate: string | readonly string[] | undefined): boolean {
  // Possibly one challenge among several (`Bearer …, DPoP error="use_dpop_nonce"`), or several header lines.
  if (wwwAuthenticate === undefined) return false;
  const text = typeof wwwAuthenticate === 'string' ? wwwAuthenticate : wwwAuthenticate.join(', ');
  return /\bdpop\b/i.test(text) && /error\s*=\s*"?use_dpop_nonce\b/i.test(text);
}
