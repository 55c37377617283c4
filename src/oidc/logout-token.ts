import { createHash } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import type { KeyValueStore } from '../store/kv.ts';
import type { OidcClient } from './client.ts';

const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
/** How old a logout token may be; the jti replay cache keeps ids a little longer than that. */
const MAX_AGE_SEC = 300;
const CLOCK_TOLERANCE_SEC = 60;
const REPLAY_TTL_MS = (MAX_AGE_SEC + 2 * CLOCK_TOLERANCE_SEC) * 1000;
/** Symmetric algorithms would mean the client secret signs: not accepted for logout tokens. */
const ASYMMETRIC = /^(RS|PS|ES)(256|384|512)$|^EdDSA$|^Ed25519$/;

/** A logout token that must be refused; the message is safe to return to the IdP. */
export class LogoutTokenError extends Error {
  readonly code = 'invalid_logout_token';
}

export interface LogoutTarget {
  issuer: string;
  sub?: string;
  idpSid?: string;
  /** Where the token's jti is recorded as used. */
  replayKey: string;
}

/**
 * Validates an OpenID Connect Back-Channel Logout 1.0 logout token: signature
 * against the IdP's JWKS, iss, aud, iat (not older than five minutes, not in
 * the future), the back-channel logout event, sub or sid, no nonce, and a jti
 * not seen before on any instance.
 */
export class LogoutTokenValidator {
  private readonly oidc: OidcClient;
  private readonly clientId: string;
  private readonly kv: KeyValueStore;
  private jwks: { uri: string; keys: ReturnType<typeof createRemoteJWKSet> } | undefined;

  constructor(oidc: OidcClient, clientId: string, kv: KeyValueStore) {
    this.oidc = oidc;
    this.clientId = clientId;
    this.kv = kv;
  }

  async validate(token: string): Promise<LogoutTarget> {
    const { issuer, jwksUri, signingAlgs } = this.oidc.metadata();
    if (!jwksUri) throw new LogoutTokenError('the OpenID provider publishes no jwks_uri');
    if (this.jwks?.uri !== jwksUri) this.jwks = { uri: jwksUri, keys: createRemoteJWKSet(new URL(jwksUri)) };
    let payload: JWTPayload;
    let typ: string | undefined;
    try {
      const verified = await jwtVerify(token, this.jwks.keys, {
        issuer,
        audience: this.clientId,
        algorithms: (signingAlgs ?? ['RS256']).filter((alg) => ASYMMETRIC.test(alg)),
        maxTokenAge: MAX_AGE_SEC,
        clockTolerance: CLOCK_TOLERANCE_SEC,
        requiredClaims: ['iat', 'jti'],
      });
      payload = verified.payload;
      typ = verified.protectedHeader.typ;
    } catch (err) {
      const code = err instanceof Error && 'code' in err ? String(err.code) : 'ERR_INVALID';
      throw new LogoutTokenError(`logout token rejected (${code})`);
    }
    if (typ !== undefined && typ.toLowerCase() !== 'logout+jwt' && typ.toLowerCase() !== 'application/logout+jwt') {
      throw new LogoutTokenError('logout token has the wrong typ header');
    }
    if (typeof payload.iat === 'number' && payload.iat > Date.now() / 1000 + CLOCK_TOLERANCE_SEC) throw new LogoutTokenError('logout token is issued in the future');
    const events = payload.events;
    if (typeof events !== 'object' || events === null || typeof (events as Record<string, unknown>)[BACKCHANNEL_LOGOUT_EVENT] !== 'object') {
      throw new LogoutTokenError('logout token lacks the back-channel logout event');
    }
    if ('nonce' in payload) throw new LogoutTokenError('logout token must not carry a nonce');
    const sub = typeof payload.sub === 'string' && payload.sub ? payload.sub : undefined;
    const sid = typeof payload.sid === 'string' && payload.sid ? payload.sid : undefined;
    if (!sub && !sid) throw new LogoutTokenError('logout token names neither sub nor sid');
    const jti = payload.jti as string;
    const replayKey = `bcl:jti:${createHash('sha256').update(`${issuer}\n${jti}`).digest('base64url')}`;
    const fresh = await this.kv.setIfAbsent(replayKey, '1', REPLAY_TTL_MS);
    if (!fresh) throw new LogoutTokenError('logout token was already used (jti replay)');
    return { issuer, ...(sub ? { sub } : {}), ...(sid ? { idpSid: sid } : {}), replayKey };
  }

  /** Un-records a token whose sessions could not be ended, so that the IdP's retry is not refused as a replay. */
  async release(target: LogoutTarget): Promise<void> {
    await this.kv.delete(target.replayKey);
  }
}
