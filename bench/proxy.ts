/**
 * Throughput and latency of the proxy hot path, printed as a table. Run by
 * hand (`npm run bench`), never in `npm test`: numbers depend on the machine.
 *
 * Everything runs on this machine: a real IdP, redis-server, an echo upstream
 * and the gateway, all on loopback; autocannon drives the load.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import autocannon from 'autocannon';
import { loginThroughGateway } from '../test/support/browser-flow.ts';
import { startEcho } from '../test/support/echo.ts';
import { reserveGatewayUrl, startTestGateway } from '../test/support/gateway.ts';
import { startIdp } from '../test/support/idp.ts';
import { startRedis } from '../test/support/redis.ts';

const DURATION_SEC = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);

interface Row {
  scenario: string;
  'req/s': number;
  'p50 ms': number;
  'p99 ms': number;
  errors: number;
}

async function run(scenario: string, url: string, headers: Record<string, string> = {}): Promise<Row> {
  const result = await autocannon({ url, connections: CONNECTIONS, duration: DURATION_SEC, headers });
  return {
    scenario,
    'req/s': Math.round(result.requests.average),
    'p50 ms': result.latency.p50,
    'p99 ms': result.latency.p99,
    errors: result.errors + result.non2xx,
  };
}

/** A bare pass-through proxy, with and without a keep-alive agent: what connection pooling is worth. */
function bareProxy(target: string, keepAlive: boolean): Promise<{ url: string; close(): void }> {
  const agent = keepAlive ? new http.Agent({ keepAlive: true, maxSockets: 256 }) : false;
  const upstream = new URL(target);
  const server = http.createServer((req, res) => {
    const proxied = http.request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers, agent }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    proxied.on('error', () => res.writeHead(502).end());
    req.pipe(proxied);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        close: () => {
          server.closeAllConnections();
          server.close();
          if (agent) agent.destroy();
        },
      }),
    ),
  );
}

const redis = await startRedis();
process.env.BFF_TEST_REDIS_URL = redis.url;
const url = await reserveGatewayUrl();
const idp = await startIdp({ redirectUris: [`${url}/auth/callback`], postLogoutRedirectUris: [`${url}/`], accessTokenTtl: 3600 });
const echo = await startEcho();
const gw = await startTestGateway({
  url,
  issuer: idp.issuer,
  routes: [
    { prefix: '/api/public', target: echo.url, token: 'none' },
    { prefix: '/api/echo', target: echo.url, token: 'user' },
  ],
  env: { BFF_LOG_LEVEL: 'silent' },
});
const { cookieHeader } = await loginThroughGateway(url);
const pooled = await bareProxy(echo.url, true);
const unpooled = await bareProxy(echo.url, false);

// The echo server records every request; keep it from growing during the runs.
const trim = setInterval(() => (echo.requests.length = 0), 500);
const rows: Row[] = [];
try {
  rows.push(await run('echo upstream, direct', `${echo.url}/x`));
  rows.push(await run('bare proxy, keep-alive agent', `${pooled.url}/x`));
  rows.push(await run('bare proxy, no agent (new TCP per request)', `${unpooled.url}/x`));
  rows.push(await run('gateway, token "none" route', `${url}/api/public/x`, { 'x-csrf': '1' }));
  rows.push(await run('gateway, token "user" route (Redis session)', `${url}/api/echo/x`, { 'x-csrf': '1', cookie: cookieHeader }));
} finally {
  clearInterval(trim);
  pooled.close();
  unpooled.close();
  await gw.close();
  await echo.close();
  await idp.close();
  await redis.stop();
}
console.log(`\n${CONNECTIONS} connections, ${DURATION_SEC} s per scenario, node ${process.version}\n`);
console.table(rows);
