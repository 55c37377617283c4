import { randomBytes } from 'node:crypto';
import { Router, type Request, type RequestHandler, type Response } from 'express';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/types.ts';
import { crossSiteProblem, csrfProblem } from '../http/csrf.ts';
import { problems } from '../http/problem-catalogue.ts';
import { sendProblem } from '../http/problem.ts';
import { safeReturnTo } from '../http/return-to.ts';
import { describe, type OidcClient } from '../oidc/client.ts';
import { IdpInvalidResponseError, IdpRefusedError, IdpUnavailableError, isClientRefusal, isNetworkError } from '../oidc/errors.ts';
import { DPOP_NOT_HONOURED } from '../oidc/dpop.ts';
import { StepUpNotSatisfiedError } from '../oidc/step-up-checks.ts';
import { StepUpAllowList } from '../policy/allow-list.ts';
import { destroySession, regenerateSession, saveSession } from '../session/session-ops.ts';
import { parseHandle } from '../session/handles.ts';
import type { SessionIndex, SessionOwner } from '../session/session-index.ts';
import type { UserSession } from '../session/types.ts';
import { sendLoginFailure, type LoginFailure } from './error-page.ts';
import { sendNavigationProblem } from './navigation-failure.ts';
import type { LoginTransactions } from './transaction.ts';
import { absoluteDeadline } from '../session/lifetime.ts';
import { sessionCookieAttributes } from '../http/cookies.ts';

export interface AuthRouterDeps {
  config: GatewayConfig;
  oidc: OidcClient;
  transactions: LoginTransactions;
  session: RequestHandler;
  index: SessionIndex;
  logger: Logger;
  stats?: LoginStats;
}

/**
 * Why a callback created no session: the error page's code, a `prompt=none`
 * that found no IdP session, or a step-up the user cancelled at the IdP.
 */
export type LoginFailureReason = LoginFailure | 'silent_login_miss' | 'step_up_cancelled';

export interface LoginStats {
  onStarted(): void;
  onCompleted(): void;
  onFailed(reason: LoginFailureReason): void;
}

/** Prompt values a caller may ask for; `none` is silent login. */
const PROMPTS = new Set(['none', 'login', 'consent', 'select_account']);
/** IdP answers to `prompt=none` that just mean "not signed in there". */
const SILENT_LOGIN_MISSES = new Set(['login_required', 'consent_required', 'interaction_required', 'account_selection_required']);

export function authRouter(deps: AuthRouterDeps): Router {
  const { config, oidc, transactions, logger, stats } = deps;
  const router = Router();
  const stepUps = new StepUpAllowList(config.routes);

  router.get('/login', async (req, res) => {
    // Only what a route's stepUp declares reaches the IdP: /auth/login is no open relay of authentication parameters.
    const asked = stepUps.loginRequest(req.query.acr_values, req.query.max_age);
    if ('undeclared' in asked) return sendNavigationProblem(req, res, problems.stepUpNotDeclared(asked.undeclared), config.errorUrl);
    const { acr, maxAge } = asked.stepUp;
    if (!oidc.ready) return sendNavigationProblem(req, res, problems.idpUnavailable(), config.errorUrl);
    const returnTo = safeReturnTo(req.query.returnTo, config.publicOrigin);
    const prompt = typeof req.query.prompt === 'string' && PROMPTS.has(req.query.prompt) ? req.query.prompt : undefined;
    let started;
    try {
      started = await oidc.startLogin({ ...(prompt ? { prompt } : {}), ...(acr !== undefined ? { acrValues: acr } : {}), ...(maxAge !== undefined ? { maxAge } : {}) });
    } catch (err) {
      // A pushed authorization request the IdP refused or could not take: the IdP's doing, not the browser's.
      logger.warn({ reason: describe(err) }, 'login could not be started at the OpenID provider');
      if (isNetworkError(err)) return sendNavigationProblem(req, res, problems.idpUnavailable(), config.errorUrl);
      return sendNavigationProblem(req, res, problems.idpRefusedLogin(), config.errorUrl);
    }
    const { url, checks } = started;
    await transactions.begin(req, res, { ...checks, returnTo, ...(prompt ? { prompt } : {}) });
    stats?.onStarted();
    res.setHeader('Cache-Control', 'no-store');
    res.redirect(302, url);
  });

  router.get('/callback', deps.session, async (req, res) => {
    const fail = (code: LoginFailure, idpError?: string): void => {
      logger.warn({ reason: code, ...(idpError ? { idpError } : {}) }, 'login failed');
      stats?.onFailed(code);
      sendLoginFailure(res, code, config.errorUrl, idpError);
    };
    const taken = await transactions.take(req, res);
    if (!taken.found) return fail(taken.reason === 'no_cookie' ? 'login_transaction_missing' : 'login_transaction_unknown');
    const { tx } = taken;
    if (req.query.state !== tx.state) return fail('state_mismatch');
    const query = req.originalUrl.includes('?') ? req.originalUrl.slice(req.originalUrl.indexOf('?')) : '';
    let result;
    try {
      result = await oidc.finishLogin(query, tx);
    } catch (err) {
      if (err instanceof IdpRefusedError && err.endpoint === 'authorization') {
        if (tx.prompt === 'none' && SILENT_LOGIN_MISSES.has(err.error)) {
          stats?.onFailed('silent_login_miss');
          res.setHeader('Cache-Control', 'no-store');
          return res.redirect(302, tx.returnTo);
        }
        // A step-up the user cancelled: the session they had is untouched, and the page they came from decides what next.
        if ((tx.acrValues !== undefined || tx.maxAge !== undefined) && err.error === 'access_denied') {
          logger.info({ reason: 'step_up_cancelled' }, 'step-up sign-in cancelled at the OpenID provider; session kept');
          stats?.onFailed('step_up_cancelled');
          res.setHeader('Cache-Control', 'no-store');
          return res.redirect(302, tx.returnTo);
        }
        return fail('idp_error', err.error);
      }
      if (err instanceof StepUpNotSatisfiedError) {
        logger.warn({ fault: err.reason }, 'the ID token does not satisfy the step-up the login asked for');
        return fail('step_up_not_satisfied');
      }
      logger.warn({ reason: describe(err) }, 'authorization code exchange failed');
      if (err instanceof IdpUnavailableError) return fail('idp_unavailable');
      // BFF_DPOP=true and the IdP answered a plain Bearer token: an IdP (or client registration) that ignores DPoP.
      if (err instanceof IdpInvalidResponseError && err.reason === DPOP_NOT_HONOURED) {
        logger.error({ reason: DPOP_NOT_HONOURED }, 'BFF_DPOP=true but the OpenID provider issued a Bearer token: enable DPoP for this client at the provider');
        return fail('dpop_not_honoured');
      }
      // The gateway's own credentials refused: every login fails the same way until an operator fixes them.
      if (err instanceof IdpRefusedError && isClientRefusal(err)) return fail('invalid_client', err.error);
      return fail(err instanceof IdpRefusedError ? 'code_exchange_failed' : 'response_invalid', err instanceof IdpRefusedError ? err.error : undefined);
    }
    const now = Date.now();
    const user: UserSession = {
      sub: result.sub,
      claims: result.claims,
      ...result.tokens,
      createdAt: now,
      absoluteExpiresAt: absoluteDeadline(now + config.sessionAbsoluteTimeoutSec * 1000, result.tokens.refreshTokenExpiresAt),
      logoutNonce: randomBytes(16).toString('base64url'),
      ...(result.idpSid ? { idpSid: result.idpSid } : {}),
      ...(result.acr !== undefined ? { acr: result.acr } : {}),
      ...(result.authTime !== undefined ? { authTime: result.authTime } : {}),
      // Made at /auth/login and kept (encrypted) in the transaction until now: the tokens are bound to it.
      ...(tx.dpopKey ? { dpopKey: tx.dpopKey } : {}),
    };
    // A new id (and a new encryption key) at login: a session id planted before login is worthless.
    await regenerateSession(req);
    req.session.user = user;
    await saveSession(req);
    const storeId = parseHandle(req.sessionID)?.storeId as string;
    await deps.index.add(storeId, owner(user), user.absoluteExpiresAt - now);
    logger.info({ event: 'login' }, 'login completed');
    stats?.onCompleted();
    res.setHeader('Cache-Control', 'no-store');
    res.redirect(302, tx.returnTo);
  });

  router.get('/user', deps.session, (req, res) => {
    const refused = crossSiteProblem(req, config.publicOrigin);
    if (refused) return sendProblem(res, refused);
    const user = req.session.user;
    if (!user) return sendProblem(res, problems.notAuthenticated());
    const expiresIn = Math.max(0, Math.floor((user.absoluteExpiresAt - Date.now()) / 1000));
    res.setHeader('Cache-Control', 'no-store');
    res.json({
      sub: user.sub,
      claims: user.claims,
      session: { expiresIn, idleExpiresIn: Math.min(expiresIn, config.sessionIdleTimeoutSec) },
      logoutUrl: `/auth/logout?sid=${encodeURIComponent(user.logoutNonce)}`,
      ...(user.acr !== undefined ? { acr: user.acr } : {}),
      ...(user.authTime !== undefined ? { authTime: user.authTime } : {}),
    });
  });

  router.get('/logout', deps.session, async (req, res) => {
    const user = req.session.user;
    res.setHeader('Cache-Control', 'no-store');
    if (!user) return res.redirect(302, config.postLogoutRedirectUrl);
    if (req.query.sid !== user.logoutNonce) {
      return sendProblem(res, problems.logoutSidMismatch());
    }
    res.redirect(302, await endSession(req, res, user));
  });

  router.post('/logout', deps.session, async (req, res) => {
    const refused = csrfProblem(req, config.publicOrigin, config.csrfHeader);
    if (refused) return sendProblem(res, refused);
    const user = req.session.user;
    res.setHeader('Cache-Control', 'no-store');
    if (!user) return res.json({ redirectUrl: config.postLogoutRedirectUrl });
    res.json({ redirectUrl: await endSession(req, res, user) });
  });

  /** Revokes the refresh token, deletes the session and its cookie; returns where the browser goes next. */
  async function endSession(req: Request, res: Response, user: UserSession): Promise<string> {
    if (user.refreshToken) {
      try {
        await oidc.revokeRefreshToken(user.refreshToken);
      } catch (err) {
        // Logout must still succeed locally; the token dies with its IdP session or expiry.
        logger.warn({ reason: describe(err) }, 'refresh token revocation failed');
      }
    }
    const storeId = parseHandle(req.sessionID)?.storeId;
    await destroySession(req);
    if (storeId) await deps.index.remove(storeId, owner(user));
    res.clearCookie(config.cookieName, sessionCookieAttributes(config));
    logger.info({ event: 'logout' }, 'logout completed');
    return oidc.endSessionUrl(user.idToken);
  }

  function owner(user: UserSession): SessionOwner {
    return { issuer: oidc.metadata().issuer, sub: user.sub, ...(user.idpSid ? { idpSid: user.idpSid } : {}) };
  }

  return router;
}
