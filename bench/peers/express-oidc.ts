/**
 * The Node convention `npm run bench` compares the gateway with: what a team
 * writes by hand when it needs a BFF today. express + express-openid-connect
 * (sessions in Redis through connect-redis, as its README suggests for
 * sessions too large for a cookie) + http-proxy-middleware on /api, which adds
 * the user's access token and drops the cookie. Written the way its docs and
 * examples write it, not tuned: it is the alternative a user would pick, so it
 * is measured as deployed. Runs as a child process of the benchmark, so that
 * its RSS and CPU time are its own; prints `{"port":N}` once it listens.
 *
 * Environment: BENCH_PORT (the port its base URL names, registered at the IdP),
 * BENCH_ISSUER, BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, BENCH_SECRET,
 * BENCH_REDIS_URL, BENCH_TARGET (the upstream).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createClient } from '@redis/client';
import { RedisStore } from 'connect-redis';
import express from 'express';
import { auth, type ConfigParams } from 'express-openid-connect';
import { createProxyMiddleware } from 'http-proxy-middleware';

function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    process.stderr.write(`express-oidc peer: ${name} is required\n`);
    process.exit(2);
  }
  return value;
}

const port = Number(required('BENCH_PORT'));
const target = required('BENCH_TARGET');
const redis = createClient({ url: required('BENCH_REDIS_URL') });
redis.on('error', (err: unknown) => process.stderr.write(`express-oidc peer: redis: ${String(err)}\n`));
await redis.connect();

/**
 * connect-redis is typed for express-session's SessionData, whose cookie express-openid-connect's payload
 * does not match in type only: connect-redis reads `cookie.expires` through `new Date()`, which takes the
 * epoch milliseconds this payload has. express-openid-connect's own examples pair it with connect-redis.
 */
type OidcSessionStore = NonNullable<NonNullable<ConfigParams['session']>['store']>;
const store = new RedisStore({ client: redis, prefix: 'eoc:' }) as unknown as OidcSessionStore;

const app = express();
app.use(
  auth({
    authRequired: false,
    auth0Logout: false,
    // A silent login would send every anonymous page view to the IdP first; an API gateway does not want that.
    attemptSilentLogin: false,
    issuerBaseURL: required('BENCH_ISSUER'),
    baseURL: `http://127.0.0.1:${port}`,
    clientID: required('BENCH_CLIENT_ID'),
    clientSecret: required('BENCH_CLIENT_SECRET'),
    secret: required('BENCH_SECRET'),
    // The default form_post needs SameSite=None cookies, which need https; the bench runs on plain loopback http.
    authorizationParams: { response_type: 'code', response_mode: 'query', scope: 'openid profile email' },
    session: { store },
  }),
);

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const proxy = createProxyMiddleware<express.Request, express.Response>({ target: `${target}/api`, changeOrigin: true, agent });
app.use(
  '/api',
  (req, res, next) => {
    const token = req.oidc.accessToken?.access_token;
    if (!req.oidc.isAuthenticated() || token === undefined) {
      res.status(401).json({ error: 'unauthenticated' });
      return;
    }
    req.headers.authorization = `Bearer ${token}`;
    // The session cookie is this server's business, not the API's.
    delete req.headers.cookie;
    next();
  },
  proxy,
);

const server = app.listen(port, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});

const stop = (): void => {
  server.closeAllConnections();
  server.close(() => {
    agent.destroy();
    void redis.close().finally(() => process.exit(0));
  });
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
