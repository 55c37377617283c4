import type { RequestListener } from 'node:http';
import express, { type Express, type RequestHandler } from 'express';
import helmet from 'helmet';
import type { Logger } from 'pino';
import { backchannelLogoutRouter, type BackchannelDeps } from './auth/backchannel.ts';
import { frontchannelLogoutRouter, type FrontchannelDeps } from './auth/frontchannel.ts';
import { authRouter, type LoginStats } from './auth/router.ts';
import type { LoginTransactions } from './auth/transaction.ts';
import type { GatewayConfig } from './config/types.ts';
import { trustProxyOf } from './http/client-address.ts';
import { errorHandler, errorResponder } from './http/error-handler.ts';
import { problems } from './http/problem-catalogue.ts';
import { sendProblem } from './http/problem.ts';
import type { SpaDevProxy } from './http/spa-dev.ts';
import { staticSpa } from './http/static.ts';
import { urlLengthProblem } from './http/url-limit.ts';
import type { OidcClient } from './oidc/client.ts';
import type { HttpObserver } from './ops/http-observer.ts';
import type { UpstreamCredentials } from './proxy/credentials.ts';
import { apiProxy } from './proxy/handler.ts';
import type { ApiRoutes } from './proxy/routing.ts';
import type { UpstreamRoute } from './proxy/upstream.ts';
import type { SessionIndex } from './session/session-index.ts';

export interface AppDeps {
  logger: Logger;
  /** First in the chain: request id, access log line and request metrics. */
  observe: HttpObserver;
  loginStats?: LoginStats;
  oidc: OidcClient;
  transactions: LoginTransactions;
  /** express-session, for the `/auth` routes that change the session. */
  session: RequestHandler;
  /** The `/api` route table (each route with its proxy) and what each route sends upstream. */
  routes: ApiRoutes<UpstreamRoute>;
  credentials: UpstreamCredentials;
  /** `BFF_SPA_DEV_URL` mode. */
  spaDev?: SpaDevProxy;
  index: SessionIndex;
  backchannel: BackchannelDeps;
  frontchannel: FrontchannelDeps;
  /** Per-address rate limits on starting and finishing logins; absent when turned off. */
  loginRateLimit?: RequestHandler;
  callbackRateLimit?: RequestHandler;
}

/**
 * The main port's request listener. Every request is observed and its URL
 * length checked; `/api` requests then take the proxy's plain-Node path, and
 * everything else goes to the Express app.
 */
export function createRequestListener(config: GatewayConfig, deps: AppDeps): RequestListener {
  const onError = errorResponder(deps.logger);
  const api = apiProxy({ config, routes: deps.routes, credentials: deps.credentials, onError });
  const app = createApp(config, deps, onError);
  const maxUrlLength = config.connectionLimits.maxUrlLength;
  return (req, res) => {
    deps.observe(req, res);
    const tooLong = urlLengthProblem(req.url ?? '/', maxUrlLength);
    if (tooLong) return sendProblem(res, tooLong);
    if (api(req, res)) return;
    // `/api` sends `100 Continue` once a request has passed its checks; the rest of the gateway reads small bodies at once.
    if (req.headers.expect !== undefined) res.writeContinue();
    app(req, res);
  };
}

/** Wires everything but `/api` into one Express app; the pieces live in their own modules. */
function createApp(config: GatewayConfig, deps: AppDeps, onError: ReturnType<typeof errorResponder>): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', trustProxyOf(config));
  app.set('query parser', 'simple');
  if (config.secure) {
    // BFF_PUBLIC_URL is https: TLS ends in front of the gateway, so every request it serves was https for the browser.
    // Without this, express-session would refuse to set the Secure cookie on plain-http hops behind a TLS proxy.
    Object.defineProperty(app.request, 'secure', { get: () => true });
  }

  // First, so that a refused flood costs as little as possible.
  if (deps.loginRateLimit) app.use('/auth/login', deps.loginRateLimit);
  if (deps.callbackRateLimit) app.use('/auth/callback', deps.callbackRateLimit);

  // The dev server's responses are its own (Vite's inline preamble would not pass the production CSP).
  if (deps.spaDev) app.use(deps.spaDev.handle);

  app.use(
    helmet({ strictTransportSecurity: config.secure, contentSecurityPolicy: false }),
    // BFF_CSP, as one configured string, rather than helmet's directive objects.
    (_req, res, next) => {
      res.setHeader('Content-Security-Policy', config.contentSecurityPolicy);
      next();
    },
  );
  app.use('/auth', backchannelLogoutRouter(deps.backchannel));
  // After helmet: it replaces the framing headers for the IdP's iframe on its own route only.
  app.use('/auth', frontchannelLogoutRouter(deps.frontchannel));
  app.use(
    '/auth',
    authRouter({ config, oidc: deps.oidc, transactions: deps.transactions, session: deps.session, index: deps.index, logger: deps.logger, ...(deps.loginStats ? { stats: deps.loginStats } : {}) }),
  );
  if (config.staticDir) app.use(staticSpa(config.staticDir));
  app.use((req, res) => sendProblem(res, problems.notFound(req.path)));
  app.use(errorHandler(onError));
  return app;
}
