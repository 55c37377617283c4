import { Router, type Response } from 'express';
import type { Logger } from 'pino';
import { problems, type LogoutRequestFault } from '../http/problem-catalogue.ts';
import { sendProblem } from '../http/problem.ts';
import { IdpUnavailableError } from '../oidc/errors.ts';
import { endIdpSessions, type IdpSessionStores } from './end-idp-sessions.ts';

export interface FrontchannelDeps extends IdpSessionStores {
  /** The IdP's issuer identifier exactly as its discovery metadata states it; throws IdpUnavailableError before discovery. */
  issuer(): string;
  /** Origin of the issuer URL: the only page that may frame the answer. */
  idpOrigin: string;
  logger: Logger;
  onLogout?(sessionsEnded: number): void;
}

/** Nothing to load, nothing to run: the IdP only waits for the frame's load event. */
const SIGNED_OUT_PAGE = '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Signed out</title></head><body><p>Signed out.</p></body></html>';

/**
 * `GET /auth/frontchannel-logout?iss=…&sid=…` (OpenID Connect Front-Channel
 * Logout 1.0): the IdP's logout page loads this in an iframe, and every
 * gateway session of that IdP session ends, on every instance.
 *
 * Inside a third-party iframe the SameSite=Strict session cookie is not sent
 * and no CSRF header can be added, so the IdP's `sid` alone names the sessions:
 * it is a value only the IdP and the browsers it signed in know, random and
 * unguessable. Ending sessions is all it can do.
 */
export function frontchannelLogoutRouter(deps: FrontchannelDeps): Router {
  const router = Router();
  router.get('/frontchannel-logout', async (req, res) => {
    frameableByIdp(res, deps.idpOrigin);
    const { iss, sid } = req.query;
    if (typeof iss !== 'string' || iss === '') return refuse(res, 'iss_missing');
    if (typeof sid !== 'string' || sid === '') return refuse(res, 'sid_missing');
    let issuer: string;
    try {
      issuer = deps.issuer();
    } catch (err) {
      if (err instanceof IdpUnavailableError) return sendProblem(res, problems.idpUnavailable());
      throw err;
    }
    // Exact comparison, as the specification requires: the index is keyed by this very string.
    if (iss !== issuer) return refuse(res, 'iss_mismatch');
    const ended = await endIdpSessions(deps, issuer, { idpSid: sid });
    deps.onLogout?.(ended);
    // Neither sid nor sub: a log line must not hand anyone the value that ends a session.
    deps.logger.info({ event: 'frontchannel_logout', sessions: ended }, 'front-channel logout');
    res.status(200).type('html').send(SIGNED_OUT_PAGE);
  });
  return router;
}

/**
 * helmet's X-Frame-Options and the gateway's CSP (`frame-ancestors 'none'`)
 * would blank the IdP's iframe: this answer may be framed by the IdP's
 * origin, and by nothing else. The CSP also leaves the page nothing to load.
 */
function frameableByIdp(res: Response, idpOrigin: string): void {
  res.removeHeader('X-Frame-Options');
  res.setHeader('Content-Security-Policy', `default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors ${idpOrigin}`);
  // An IdP page under COEP require-corp may embed it too; frame-ancestors still decides who may.
  res.setHeader('Cross-Origin-Resource-Policy', 'cross-origin');
  res.setHeader('Cache-Control', 'no-store');
}

function refuse(res: Response, fault: LogoutRequestFault): void {
  sendProblem(res, problems.invalidLogoutRequest(fault));
}
