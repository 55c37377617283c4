import type { IncomingMessage } from 'node:http';
import type { Upstream } from '../proxy/upstream.ts';
import { SessionReader, type LoadedSession } from '../session/reader.ts';
import { noteSession, noteUpstream } from './request-facts.ts';

/**
 * The same upstream, telling the request's facts when the request is handed
 * over (the start of the upstream time and the route label).
 */
export function observedUpstream(upstream: Upstream): Upstream {
  const inner = upstream.handle;
  const prefix = upstream.route.prefix;
  const handle: Upstream['handle'] = (req, res, body, proof) => {
    noteUpstream(req, prefix);
    inner(req, res, body, proof);
  };
  return { ...upstream, handle };
}

/** The proxy's session reader, also telling the request's facts whose session it loaded (for the access log). */
export class ObservedSessionReader extends SessionReader {
  override async load(req: IncomingMessage): Promise<LoadedSession | undefined> {
    const session = await super.load(req);
    const sub = session?.data.user?.sub;
    if (sub !== undefined) noteSession(req, sub);
    return session;
  }
}
