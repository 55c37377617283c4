import express, { Router, type Response } from 'express';
import type { Logger } from 'pino';
import { IdpUnavailableError } from '../oidc/errors.ts';
import { LogoutTokenError, type LogoutTokenValidator } from '../oidc/logout-token.ts';
import type { SessionRepository } from '../session/repository.ts';
import type { SessionIndex } from '../session/session-index.ts';
import { endIdpSessions } from './end-idp-sessions.ts';

export interface BackchannelDeps {
  validator: LogoutTokenValidator;
  index: SessionIndex;
  sessions: SessionRepository;
  logger: Logger;
  onLogout?(sessionsEnded: number): void;
}

/**
 * `POST /auth/backchannel-logout` (OpenID Connect Back-Channel Logout 1.0):
 * the IdP posts a logout token; every session it names ends, on every
 * instance. Server to server, so no CSRF header or Origin applies.
 */
export function backchannelLogoutRouter(deps: BackchannelDeps): Router {
  const router = Router();
  router.post('/backchannel-logout', express.urlencoded({ extended: false, limit: '32kb', parameterLimit: 10 }), async (req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    const token = (req.body as Record<string, unknown> | undefined)?.logout_token;
    if (typeof token !== 'string' || token === '') return refuse(res, 'logout_token is missing (send it form-encoded)');
    let target;
    try {
      target = await deps.validator.validate(token);
    } catch (err) {
      if (err instanceof LogoutTokenError) {
        deps.logger.warn({ event: 'backchannel_logout', reason: err.message }, 'logout token refused');
        return refuse(res, err.message);
      }
      if (err instanceof IdpUnavailableError) return res.status(503).json({ error: 'temporarily_unavailable', error_description: 'OpenID provider metadata not loaded yet' });
      throw err;
    }
    let ended: number;
    try {
      ended = await endIdpSessions(deps, target.issuer, target);
    } catch (err) {
      await deps.validator.release(target).catch(() => undefined);
      throw err;
    }
    deps.onLogout?.(ended);
    deps.logger.info({ event: 'backchannel_logout', sessions: ended, by: target.idpSid ? 'sid' : 'sub' }, 'back-channel logout');
    res.status(200).end();
  });
  return router;
}

function refuse(res: Response, description: string): void {
  res.status(400).json({ error: 'invalid_request', error_description: description });
}
