import type { EncryptedStore } from '../session/encrypted-store.ts';
import type { SessionIndex } from '../session/session-index.ts';

export interface IdpSessionStores {
  index: SessionIndex;
  sessions: EncryptedStore;
}

/** What an IdP-initiated logout names: one IdP session (`sid`), or every session of a user (`sub`). */
export interface IdpLogoutTarget {
  sid?: string;
  sub?: string;
}

/**
 * Ends every gateway session an IdP-initiated logout names, on every instance:
 * the index and the records live in the shared store, and destroying a record
 * tells every instance's session cache (and its WebSockets). Back-channel and
 * front-channel logout both end sessions here, so they cannot drift apart.
 * Returns how many sessions the index named.
 */
export async function endIdpSessions(stores: IdpSessionStores, issuer: string, target: IdpLogoutTarget): Promise<number> {
  const storeIds = await stores.index.find(issuer, target);
  await Promise.all(storeIds.map((id) => stores.sessions.destroyStoreId(id)));
  await stores.index.forget(issuer, target);
  return storeIds.length;
}
