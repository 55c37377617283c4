import { ByteReader, RecordFormatError } from './byte-layout.ts';
import { applyClaimsDelta, claimsDelta, idTokenClaims, type ClaimsDelta } from './id-token-claims.ts';
import { packToken, unpackToken } from './token-bytes.ts';
import type { SessionState, UserSession } from './types.ts';

/*
 * The plaintext of a binary session record (record-cipher.ts encrypts it):
 *
 *   access token · refresh token · ID token · JSON of the rest
 *
 * each token as token-bytes.ts packs it. The rest is the session without its
 * tokens, with `claims` replaced by `claimsDelta` (how they differ from the ID
 * token's, see id-token-claims.ts) whenever the ID token can be read, and
 * without express-session's cookie, which the session's adapter rebuilds from
 * the configuration (express-store.ts). Nothing is compressed: compressing
 * attacker-influenced data (a user's name, claims) together with secrets
 * before encryption lets the ciphertext's length tell about the secrets.
 */

/** What the JSON part holds for the user: the session minus its tokens, with claims in full or as a delta. */
type StoredUser = Omit<UserSession, 'accessToken' | 'refreshToken' | 'idToken' | 'claims'> & { claims?: Record<string, unknown>; claimsDelta?: ClaimsDelta };

/** Why a record that decrypted could not be read: its layout is not this format's, or its claims need an ID token that cannot be read. */
export type UnreadableReason = 'malformed' | 'id_token_unreadable';

export type DecodedSession = { ok: true; session: SessionState } | { ok: false; reason: UnreadableReason };

export function encodeSession(session: SessionState & { cookie?: unknown }): Buffer {
  const { cookie: _rebuiltOnLoad, user, ...rest } = session;
  if (!user) return Buffer.concat([...packToken(undefined), ...packToken(undefined), ...packToken(undefined), Buffer.from(JSON.stringify(rest))]);
  const { accessToken, refreshToken, idToken, claims, ...other } = user;
  const fromIdToken = idToken === undefined ? undefined : idTokenClaims(idToken);
  const stored: StoredUser = { ...other, ...(fromIdToken ? { claimsDelta: claimsDelta(claims, fromIdToken) } : { claims }) };
  return Buffer.concat([...packToken(accessToken), ...packToken(refreshToken), ...packToken(idToken), Buffer.from(JSON.stringify({ ...rest, user: stored }))]);
}

/** The session encodeSession wrote; a failure is an outcome, never an exception. */
export function decodeSession(plaintext: Buffer): DecodedSession {
  let accessToken: string | undefined;
  let refreshToken: string | undefined;
  let idToken: string | undefined;
  let parsed: unknown;
  try {
    const reader = new ByteReader(plaintext);
    accessToken = unpackToken(reader);
    refreshToken = unpackToken(reader);
    idToken = unpackToken(reader);
    parsed = JSON.parse(reader.rest().toString('utf8'));
  } catch (err) {
    if (err instanceof RecordFormatError || err instanceof SyntaxError) return { ok: false, reason: 'malformed' };
    throw err;
  }
  if (!isObject(parsed)) return { ok: false, reason: 'malformed' };
  const { user: stored, ...rest } = parsed as SessionState & { user?: unknown };
  if (stored === undefined) return accessToken === undefined ? { ok: true, session: rest } : { ok: false, reason: 'malformed' };
  if (!isObject(stored) || accessToken === undefined) return { ok: false, reason: 'malformed' };
  const { claims: full, claimsDelta: delta, ...other } = stored as StoredUser;
  let claims: Record<string, unknown>;
  if (delta !== undefined) {
    if (!isDelta(delta)) return { ok: false, reason: 'malformed' };
    const fromIdToken = idToken === undefined ? undefined : idTokenClaims(idToken);
    if (!fromIdToken) return { ok: false, reason: 'id_token_unreadable' };
    claims = applyClaimsDelta(fromIdToken, delta);
  } else if (isObject(full)) {
    claims = full;
  } else {
    return { ok: false, reason: 'malformed' };
  }
  const user: UserSession = { ...other, claims, accessToken, ...(refreshToken !== undefined ? { refreshToken } : {}), ...(idToken !== undefined ? { idToken } : {}) };
  return { ok: true, session: { ...rest, user } };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isDelta(value: unknown): value is ClaimsDelta {
  if (!isObject(value)) return false;
  const { set, unset } = value;
  return (set === undefined || isObject(set)) && (unset === undefined || (Array.isArray(unset) && unset.every((name) => typeof name === 'string')));
}
