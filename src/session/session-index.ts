import { forSession } from '../store/errors.ts';
import type { KeyValueStore } from '../store/kv.ts';
import { sessionIndexKey as keyFor } from './keys.ts';

export interface SessionOwner {
  /** The IdP's issuer: a sub or sid is only unique per issuer. */
  issuer: string;
  sub: string;
  /** The IdP's session id (`sid` claim), when it sends one. */
  idpSid?: string;
}

/**
 * Finds sessions by the IdP's `sid` or `sub`, on every instance (the index
 * lives in the shared store), for back-channel logout. Entries expire with
 * the longest-lived session they name; a stale member (a session that ended
 * on its own) costs nothing but a delete of a missing key.
 */
export class SessionIndex {
  private readonly kv: KeyValueStore;

  constructor(kv: KeyValueStore) {
    this.kv = kv;
  }

  async add(storeId: string, owner: SessionOwner, ttlMs: number): Promise<void> {
    await forSession(this.kv.addToSet(keyFor('sub', owner.issuer, owner.sub), storeId, ttlMs));
    if (owner.idpSid) await forSession(this.kv.addToSet(keyFor('sid', owner.issuer, owner.idpSid), storeId, ttlMs));
  }

  async remove(storeId: string, owner: SessionOwner): Promise<void> {
    await forSession(this.kv.removeFromSet(keyFor('sub', owner.issuer, owner.sub), storeId));
    if (owner.idpSid) await forSession(this.kv.removeFromSet(keyFor('sid', owner.issuer, owner.idpSid), storeId));
  }

  /** Store ids of the sessions a logout token names: by `sid` when it has one, else every session of `sub`. */
  async find(issuer: string, claims: { sub?: string; idpSid?: string }): Promise<string[]> {
    if (claims.idpSid) return forSession(this.kv.members(keyFor('sid', issuer, claims.idpSid)));
    if (claims.sub) return forSession(this.kv.members(keyFor('sub', issuer, claims.sub)));
    return [];
  }

  /** Forgets the index entries of a logout token once its sessions are gone. */
  async forget(issuer: string, claims: { sub?: string; idpSid?: string }): Promise<void> {
    const keys: string[] = [];
    if (claims.idpSid) keys.push(keyFor('sid', issuer, claims.idpSid));
    else if (claims.sub) keys.push(keyFor('sub', issuer, claims.sub));
    await forSession(this.kv.delete(...keys));
  }
}
