import type { SessionRepository } from './repository.ts';
import type { SessionIndex, SessionOwner } from './session-index.ts';

/**
 * Ends one session by its store id, leaving nothing behind: the record (which
 * tells every instance's session cache and WebSockets through the store's
 * change listener) and its sid/sub index entries, so that a later logout by
 * sid or sub neither finds it nor counts it.
 */
export class SessionEnder {
  private readonly sessions: SessionRepository;
  private readonly index: SessionIndex;

  constructor(sessions: SessionRepository, index: SessionIndex) {
    this.sessions = sessions;
    this.index = index;
  }

  /** True when the session still existed (and has now ended). */
  async end(storeId: string, owner: SessionOwner): Promise<boolean> {
    const ended = await this.sessions.destroy(storeId);
    await this.index.remove(storeId, owner);
    return ended;
  }
}
