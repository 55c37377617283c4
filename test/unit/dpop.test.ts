import { describe, expect, test } from '@jest/globals';
import { calculateJwkThumbprint, EmbeddedJWK, jwtVerify, type JWK } from 'jose';
import { createHash } from 'node:crypto';
import { DpopKeys, generateDpopKey, importDpopKey } from '../../src/dpop/keys.ts';
import { asksForNonce, dpopProof } from '../../src/dpop/proof.ts';

describe('DPoP proofs', () => {
  test.each(['ES256', 'EdDSA'] as const)('%s: a proof jose verifies against its header key, with htm, htu, iat, jti, ath and the nonce, and the thumbprint jose computes', async (alg) => {
    const key = importDpopKey(generateDpopKey(alg));
    const proof = dpopProof(key, 'POST', 'https://api.test/orders/1', 'the-access-token', 'n-1');
    const { payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: [alg] });
    expect(protectedHeader.jwk).not.toHaveProperty('d');
    expect(await calculateJwkThumbprint(protectedHeader.jwk as JWK)).toBe(key.jkt);
    expect(payload).toMatchObject({ htm: 'POST', htu: 'https://api.test/orders/1', nonce: 'n-1', ath: createHash('sha256').update('the-access-token').digest('base64url') });
    expect(Math.abs((payload.iat as number) - Date.now() / 1000)).toBeLessThan(5);
    // RFC 9449 §4.2: a version 4 UUID (122 random bits) is unique enough.
    expect(payload.jti).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(dpopProof(key, 'GET', 'https://api.test/', 't').split('.')[1]).not.toBe(dpopProof(key, 'GET', 'https://api.test/', 't').split('.')[1]);
  });

  test('imported keys are cached by key, bounded, and a new login gets a new key', () => {
    const keys = new DpopKeys('ES256', 2);
    const one = keys.generate();
    const two = keys.generate();
    expect(one.d).not.toBe(two.d);
    const loaded = keys.load(one);
    expect(keys.load({ ...one })).toBe(loaded);
    keys.load(two);
    keys.load(keys.generate());
    expect(keys.load(one)).not.toBe(loaded);
    expect(keys.gatewayKey.jkt).not.toBe(loaded.jkt);
  });

  test.each([
    ['DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"', true],
    ['Bearer realm="api", DPoP error="use_dpop_nonce"', true],
    ['DPoP error="invalid_dpop_proof"', false],
    ['Bearer error="use_dpop_nonce"', false],
  ])('asksForNonce(%s) is %s', (header, expected) => {
    expect(asksForNonce(header)).toBe(expected);
  });
});
