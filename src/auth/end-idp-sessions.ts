import type { SessionRepository } from '../session/repository.ts';
import type { SessionIndex } from '../session/session-index.ts';

export interface IdpSessionStores {
  index: SessionIndex;
  sessions: SessionRepository;
}

/** What an IdP-initiated logout names: one IdP session (`sid`), or every session of a user (`sub`). */
export interface IdpLogoutTarget {
  idpSid?: string;
  sub?: string;
}

/**
 * Ends every gateway session an IdP-initiated logout names, on every instance:
 * the index and the records live in the shared store, and destroying a record
 * tells every instance's session cache (and its WebSockets). Back-channel and
 * front-channel logout both end sessions here, so they cannot drift apart.
 * The index entries go with the sessions: the key the logout was found by,
 * and, when the logout names both `sid` and `sub`, the sessions' entries under
 * the other one. Returns how many sessions actually ended: an index entry
 * whose session had already ended (idle timeout, a refused refresh) does not
 * count.
 */
export async function endIdpSessions(stores: IdpSessionStores, issuer: string, target: IdpLogoutTarget): Promise<number> {
  const storeIds = await stores.index.find(issuer, target);
  const ended = await Promise.all(storeIds.map((id) => stores.sessions.destroy(id)));
  const { idpSid, sub } = target;
  if (idpSid && sub) await Promise.all(storeIds.map((id) => stores.index.remove(id, { issuer, sub, idpSid })));
  await stores.index.forget(issuer, target);
  return ended.filter(Boolean).length;
}
