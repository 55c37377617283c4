import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { createApp } from './app.ts';
import { LoginTransactions } from './auth/transaction.ts';
import type { GatewayConfig } from './config/types.ts';
import { OidcClient } from './oidc/client.ts';
import { LogoutTokenValidator } from './oidc/logout-token.ts';
import { spaDevProxy } from './http/spa-dev.ts';
import { createAdminServer } from './ops/admin.ts';
import { createLogger } from './ops/logger.ts';
import { UpstreamCredentials } from './proxy/credentials.ts';
import { ApiRoutes } from './proxy/routing.ts';
import { createUpstream } from './proxy/upstream.ts';
import { webSocketUpgrade } from './proxy/websocket.ts';
import { sessionMiddleware } from './session/middleware.ts';
import { SessionReader } from './session/reader.ts';
import { SessionIndex } from './session/session-index.ts';
import { createStores } from './session/stores.ts';
import { ClientTokenCache } from './tokens/client-credentials.ts';
import { TokenRefresher } from './tokens/refresher.ts';

export interface Gateway {
  url: string;
  adminUrl: string;
  server: http.Server;
  adminServer: http.Server;
  /** Stops accepting, lets in-flight requests finish (up to `graceMs`), then closes every connection and client. */
  close(graceMs?: number): Promise<void>;
}

export interface GatewayOptions {
  /** Listen address; all interfaces by default (the container case). */
  host?: string;
  logger?: Logger;
}

/** Builds every dependency from the configuration, then listens on the main and admin ports. */
export async function startGateway(config: GatewayConfig, options: GatewayOptions = {}): Promise<Gateway> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const stores = createStores(config, logger);
  const oidc = new OidcClient(config, logger);
  await oidc.start();
  const upstreamRoutes = config.routes.map((route) => ({ ...route, upstream: createUpstream(route, logger) }));
  const routes = new ApiRoutes(upstreamRoutes);
  const spaDev = config.spaDevUrl ? spaDevProxy(config.spaDevUrl) : undefined;
  const credentials = new UpstreamCredentials(
    new SessionReader(config, stores.sessions),
    new TokenRefresher({ oidc, sessions: stores.sessions, kv: stores.kv, skewMs: config.refreshSkewSec * 1000, logger }),
    new ClientTokenCache(oidc, config.refreshSkewSec * 1000, logger),
  );
  const index = new SessionIndex(stores.kv);
  const app = createApp(config, {
    logger,
    oidc,
    transactions: new LoginTransactions(config, stores.kv, stores.cipher),
    session: sessionMiddleware(config, stores.sessions),
    routes,
    credentials,
    ...(spaDev ? { spaDev } : {}),
    index,
    backchannel: { validator: new LogoutTokenValidator(oidc, config.clientId, stores.kv), index, sessions: stores.sessions, logger },
  });
  const server = http.createServer(app);
  server.on('upgrade', webSocketUpgrade({ config, routes, credentials, logger, ...(spaDev ? { fallback: spaDev.upgrade } : {}) }));
  const adminServer = createAdminServer({ pingStore: () => stores.kv.ping(), idpReady: () => oidc.ready });
  await listen(server, config.port, options.host);
  await listen(adminServer, config.adminPort, options.host);
  const url = `http://${hostFor(server)}`;
  const adminUrl = `http://${hostFor(adminServer)}`;
  logger.info({ url, adminUrl, publicUrl: config.publicUrl.href, store: stores.kind, routes: config.routes.length }, 'bff-gateway listening');

  return {
    url,
    adminUrl,
    server,
    adminServer,
    async close(graceMs = 10_000) {
      const drained = Promise.all([closeServer(server, graceMs), closeServer(adminServer, graceMs)]);
      await drained;
      oidc.close();
      for (const route of upstreamRoutes) route.upstream.close();
      spaDev?.close();
      await stores.close();
    },
  };
}

function listen(server: http.Server, port: number, host: string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function hostFor(server: http.Server): string {
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? (address.address === '::' ? '127.0.0.1' : `[${address.address}]`) : address.address === '0.0.0.0' ? '127.0.0.1' : address.address;
  return `${host}:${address.port}`;
}

function closeServer(server: http.Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    const force = setTimeout(() => server.closeAllConnections(), graceMs);
    force.unref();
    server.close(() => {
      clearTimeout(force);
      resolve();
    });
    server.closeIdleConnections();
  });
}
