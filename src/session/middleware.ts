import session from 'express-session';
import type { RequestHandler } from 'express';
import type { GatewayConfig } from '../config/types.ts';
import { ExpressSessionStore } from './express-store.ts';
import type { SessionRepository } from './repository.ts';
import { newHandle } from './handles.ts';
import { sessionCookieAttributes } from '../http/cookies.ts';

/**
 * express-session configured as DESIGN.md says: one HttpOnly cookie holding a
 * signed opaque id, nothing written for anonymous visitors, no write when
 * nothing changed (the store's touch slides the idle timeout instead).
 */
export function sessionMiddleware(config: GatewayConfig, sessions: SessionRepository): RequestHandler {
  const attributes = sessionCookieAttributes(config);
  const maxAge = config.sessionAbsoluteTimeoutSec * 1000;
  return session({
    name: config.cookieName,
    secret: [...config.sessionSecrets],
    // The same cookie, for sessions read back from the store (their records do not keep it).
    store: new ExpressSessionStore(sessions, { ...attributes, maxAgeMs: maxAge }),
    genid: newHandle,
    resave: false,
    saveUninitialized: false,
    rolling: false,
    // Not 'destroy': that also deletes the record when loading it failed (req.session is then unset too), so a
    // Redis that answers late would log the user out. Logout destroys the session explicitly.
    unset: 'keep',
    cookie: { ...attributes, maxAge },
  });
}
