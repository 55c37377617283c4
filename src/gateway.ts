import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { createRequestListener } from './app.ts';
import { sendNavigationProblem } from './auth/navigation-failure.ts';
import { LoginTransactions } from './auth/transaction.ts';
import type { GatewayConfig } from './config/types.ts';
import { OidcClient } from './oidc/client.ts';
import { LogoutTokenValidator } from './oidc/logout-token.ts';
import type { HttpProblem } from './http/problem.ts';
import { rateLimit } from './http/rate-limit.ts';
import { listen, urlOf } from './http/listen.ts';
import { guardConnections, serverOptions } from './http/server-limits.ts';
import { spaDevProxy } from './http/spa-dev.ts';
import { createAdminServer, instanceProbes, type Readiness } from './ops/admin.ts';
import { httpObserver } from './ops/http-observer.ts';
import { timedIdpFetch } from './ops/idp-metrics.ts';
import { createLogger } from './ops/logger.ts';
import { GatewayMetrics } from './ops/metrics.ts';
import { ObservedSessionReader, observedUpstream } from './ops/observed.ts';
import { observeRedisCommands } from './ops/redis-metrics.ts';
import { routeLabeller } from './ops/request-facts.ts';
import { drainServer, ShutdownRegistry } from './ops/shutdown.ts';
import { StepUpAllowList } from './policy/allow-list.ts';
import { UpstreamCredentials } from './proxy/credentials.ts';
import { RoutePolicy } from './proxy/route-policy.ts';
import { UpstreamChallenges } from './proxy/step-up-challenge.ts';
import { ApiRoutes } from './proxy/routing.ts';
import { createUpstream } from './proxy/upstream.ts';
import { webSocketUpgrade } from './proxy/websocket.ts';
import { SessionWebSockets } from './proxy/websocket-registry.ts';
import { sessionMiddleware } from './session/middleware.ts';
import { SessionEnder } from './session/session-end.ts';
import { SessionIndex } from './session/session-index.ts';
import { createStores } from './session/stores.ts';
import { ClientTokenCache } from './tokens/client-credentials.ts';
import { TokenRefresher } from './tokens/refresher.ts';
import { DpopNonces } from './dpop/proof.ts';

/** A gateway serving the main port; its admin port is served by this process (Gateway) or by the cluster primary. */
export interface GatewayCore {
  url: string;
  server: http.Server;
  /** What the admin port reports about this instance. */
  readiness: Readiness;
  /** This instance's metrics (a cluster primary collects every worker's). */
  registry: Registry;
  /**
   * Graceful shutdown: readiness 503 at once, WebSockets closed with 1001, no
   * new connections; in-flight requests and streams finish (up to `graceMs`),
   * then every connection and client is closed.
   */
  close(graceMs?: number): Promise<void>;
}

/** One gateway process: the main port and its own admin port. */
export interface Gateway extends GatewayCore {
  adminUrl: string;
  adminServer: http.Server;
}

/** The admin port outlives the drain (readiness must say 503 throughout), then closes quickly. */
const ADMIN_CLOSE_MS = 1000;

export interface GatewayOptions {
  /** Listen address; all interfaces by default (the container case). */
  host?: string;
  logger?: Logger;
  /**
   * Called when the gateway must stop: the provider's metadata arrived after
   * start-up (it was down then) and fails BFF_PROFILE=fapi2. The process
   * entry point exits non-zero; without it the gateway stays not ready.
   */
  onFatal?: (err: Error) => void;
}

/** Builds every dependency from the configuration, then listens on the main and admin ports. */
export async function startGateway(config: GatewayConfig, options: GatewayOptions = {}): Promise<Gateway> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const { core, started, store } = await startCore(config, { ...options, logger });
  const adminServer = createAdminServer(instanceProbes(core.readiness, core.registry));
  // The ops endpoints can stay on a private interface (127.0.0.1, a pod-internal address) while users reach the main port.
  await listen(adminServer, config.adminPort, config.adminHost ?? options.host);
  const adminUrl = urlOf(adminServer);
  logger.info({ url: core.url, adminUrl, publicUrl: config.publicUrl.href, store, routes: config.routes.length }, 'bff-gateway listening');
  started();
  return {
    ...core,
    adminUrl,
    adminServer,
    async close(graceMs = DEFAULT_GRACE_MS) {
      await core.close(graceMs);
      await drainServer(adminServer, ADMIN_CLOSE_MS);
    },
  };
}

/** A cluster worker: the main port only (its socket shared by every worker); the primary serves the admin port. */
export async function startWorkerGateway(config: GatewayConfig, options: GatewayOptions & { logger: Logger }): Promise<GatewayCore> {
  const { core, started, store } = await startCore(config, options);
  options.logger.info({ url: core.url, publicUrl: config.publicUrl.href, store, routes: config.routes.length }, 'bff-gateway listening');
  started();
  return core;
}

const DEFAULT_GRACE_MS = 10_000;

/**
 * Builds every dependency and listens on the main port. `started` is called
 * once the caller has finished its own start-up: a profile refusal that
 * arrived meanwhile is reported then, to a caller that holds the gateway.
 */
async function startCore(config: GatewayConfig, options: GatewayOptions & { logger: Logger }): Promise<{ core: GatewayCore; started: () => void; store: 'redis' | 'memory' }> {
  const logger = options.logger;
  const shutdown = new ShutdownRegistry();
  const metrics = new GatewayMetrics({ activeWebSockets: () => shutdown.openWebSockets });
  const stores = createStores(config, logger);
  // A cluster or Sentinel has no single client id: then every Redis client of this process is timed.
  const stopRedisMetrics = stores.kind === 'redis' ? observeRedisCommands(stores.redisClientId, (command, seconds, failed) => metrics.observeRedis(command, seconds, failed)) : undefined;
  if (config.profile === 'fapi2' && (config.issuerUrl.protocol === 'http:' || config.publicUrl.protocol === 'http:')) {
    logger.warn('BFF_PROFILE=fapi2 over http on a loopback host: for local development only, not a FAPI 2.0 deployment (which uses https throughout)');
  }
  let startedUp = false;
  const oidc = new OidcClient(
    config,
    logger,
    timedIdpFetch((endpoint, seconds, failed) => metrics.observeIdp(endpoint, seconds, failed)),
    // A refusal during the first discovery is thrown below; a later one (the provider was down at start-up) ends the process.
    (refusal) => (startedUp ? options.onFatal?.(refusal) : undefined),
  );
  // Give Redis a moment to connect (so the first requests do not get 503s), but start without it if it is down.
  await Promise.all([oidc.start(), until(() => stores.connected(), STORE_WAIT_MS)]);
  if (oidc.refusal) {
    oidc.close();
    stopRedisMetrics?.();
    await stores.close();
    throw oidc.refusal;
  }
  const policy = new RoutePolicy(config.publicOrigin, logger);
  const challenges = new UpstreamChallenges(new StepUpAllowList(config.routes), policy, logger);
  // The upstreams' latest DPoP nonces, for HTTP and WebSocket alike (unused without BFF_DPOP).
  const dpopNonces = new DpopNonces();
  const upstreamRoutes = config.routes.map((route) => ({
    ...route,
    upstream: observedUpstream(createUpstream(route, logger, [config.cookieName, config.txCookieName], challenges, dpopNonces)),
  }));
  const routes = new ApiRoutes(upstreamRoutes);
  const spaDev = config.spaDevUrl ? spaDevProxy(config.spaDevUrl) : undefined;
  const index = new SessionIndex(stores.kv);
  const credentials = new UpstreamCredentials(
    new ObservedSessionReader(config, stores.sessions, stores.invalidation),
    new TokenRefresher({
      grant: oidc,
      sessions: stores.sessions,
      ender: new SessionEnder(stores.sessions, index),
      locks: stores.kv,
      skewMs: config.refreshSkewSec * 1000,
      logger,
      stats: metrics.refreshStats,
    }),
    new ClientTokenCache(oidc, config.refreshSkewSec * 1000, logger),
    policy,
    oidc.dpop?.keys,
  );
  // Both limits guard navigations (/auth/login, /auth/callback): a browser gets a page, not JSON.
  const navigationRefusal = (req: IncomingMessage, res: ServerResponse, problem: HttpProblem): void => sendNavigationProblem(req, res, problem, config.errorUrl);
  const listener = createRequestListener(config, {
    logger,
    observe: httpObserver({ logger, metrics, label: routeLabeller(config.routes.map((route) => route.prefix)), logSub: config.logSub }),
    loginStats: metrics.loginStats,
    oidc,
    transactions: new LoginTransactions(config, stores.kv, stores.cipher),
    session: sessionMiddleware(config, stores.sessions),
    routes,
    credentials,
    ...(spaDev ? { spaDev } : {}),
    index,
    backchannel: {
      validator: new LogoutTokenValidator(oidc, config.clientId, stores.kv),
      index,
      sessions: stores.sessions,
      logger,
      onLogout: (sessionsEnded) => metrics.onBackchannelLogout(sessionsEnded),
    },
    frontchannel: { issuer: () => oidc.metadata().issuer, idpOrigin: config.issuerUrl.origin, index, sessions: stores.sessions, logger },
    ...(config.rateLimits.login ? { loginRateLimit: rateLimit({ name: 'login', ...config.rateLimits.login, kv: stores.kv, logger, refuse: navigationRefusal }) } : {}),
    ...(config.rateLimits.callback ? { callbackRateLimit: rateLimit({ name: 'callback', ...config.rateLimits.callback, kv: stores.kv, logger, refuse: navigationRefusal }) } : {}),
  });
  const server = http.createServer(serverOptions(config.connectionLimits), listener);
  // `Expect: 100-continue` takes the same path as every request (its checks, then `100 Continue`), not Node's automatic answer.
  server.on('checkContinue', (req, res) => server.emit('request', req, res));
  guardConnections(server, config.connectionLimits, logger);
  const sessionSockets = new SessionWebSockets({ invalidation: stores.invalidation, liveUntil: (handle) => stores.sessions.liveUntil(handle), logger });
  server.on(
    'upgrade',
    webSocketUpgrade({ config, routes, credentials, logger, onOpen: (socket) => shutdown.track(socket), sessionSockets, dpopNonces, ...(spaDev ? { fallback: spaDev.upgrade } : {}) }),
  );
  await listen(server, config.port, options.host);
  const url = urlOf(server);

  const core: GatewayCore = {
    url,
    server,
    readiness: { pingStore: () => stores.kv.ping(), idpReady: () => oidc.ready, draining: () => shutdown.draining },
    registry: metrics.registry,
    async close(graceMs = DEFAULT_GRACE_MS) {
      const websockets = shutdown.begin();
      await drainServer(server, graceMs);
      await websockets;
      sessionSockets.close();
      oidc.close();
      for (const route of upstreamRoutes) route.upstream.close();
      spaDev?.close();
      stopRedisMetrics?.();
      await stores.close();
    },
  };
  const started = (): void => {
    startedUp = true;
    // Refused while the ports were opening: reported once the caller holds the gateway (it will want to close it).
    const refusal = oidc.refusal;
    if (refusal) setImmediate(() => options.onFatal?.(refusal));
  };
  return { core, started, store: stores.kind };
}

/** How long start-up waits for the session store before serving anyway (requests needing it get 503 until it answers). */
const STORE_WAIT_MS = 3000;

async function until(condition: () => boolean, withinMs: number): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
}
