// `npm run demo`: an IdP, a sample API and the gateway serving a sample SPA, all on this
// machine. Runs straight from source on Node 24 (type stripping), no build.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config/load.ts';
import { startGateway } from '../src/gateway.ts';
import { createProcessLogger } from '../src/ops/logger.ts';
import { startDemoApi } from './api.ts';
import { DEMO_API_CLIENT_ID, DEMO_API_CLIENT_SECRET, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, startDemoIdp } from './idp.ts';

const port = Number(process.env.DEMO_PORT ?? 3000);
if (!Number.isInteger(port) || port < 1 || port > 65535 - 90) {
  console.error(`DEMO_PORT must be a port number, got ${process.env.DEMO_PORT}`);
  process.exit(2);
}
const idpPort = port + 1;
const apiPort = port + 2;
const adminPort = port + 90;
const gatewayUrl = `http://127.0.0.1:${port}`;

const idp = await startDemoIdp({ port: idpPort, gatewayUrl }).catch(busyPort);
const api = await startDemoApi({
  port: apiPort,
  introspectionUrl: `${idp.issuer}/token/introspection`,
  clientId: DEMO_API_CLIENT_ID,
  clientSecret: DEMO_API_CLIENT_SECRET,
}).catch(busyPort);

// The gateway reads only what an operator would give it, and a scratch directory as its
// working directory, so that a developer's own .env cannot leak into the demo.
const workDir = mkdtempSync(join(tmpdir(), 'bff-demo-'));
const routesFile = join(workDir, 'routes.json');
writeFileSync(routesFile, JSON.stringify({ routes: [{ prefix: '/api/echo', target: api.url, token: 'user' }] }, null, 2));

const config = loadConfig(
  {
    BFF_PUBLIC_URL: gatewayUrl,
    BFF_PORT: String(port),
    BFF_ADMIN_PORT: String(adminPort),
    BFF_ISSUER_URL: idp.issuer,
    BFF_ALLOW_INSECURE_ISSUER: 'true',
    BFF_CLIENT_ID: DEMO_CLIENT_ID,
    BFF_CLIENT_SECRET: DEMO_CLIENT_SECRET,
    // Fresh per run: restarting the demo signs everyone out, which suits a memory store.
    BFF_SESSION_SECRETS: randomBytes(48).toString('base64'),
    BFF_ROUTES_FILE: routesFile,
    BFF_STATIC_DIR: fileURLToPath(new URL('./spa/', import.meta.url)),
    BFF_LOG_LEVEL: process.env.BFF_LOG_LEVEL ?? 'info',
  },
  workDir,
);
// In a terminal, one readable line per request (JSON lines when the output is piped, as in production).
const gateway = await startGateway(config, { host: '127.0.0.1', logger: await createProcessLogger(config.logLevel) }).catch(busyPort);

console.log(`
  bff-gateway demo
    SPA + gateway   ${gatewayUrl}/
    IdP             ${idp.issuer}   (client ${DEMO_CLIENT_ID})
    sample API      ${api.url}   (proxied as ${gatewayUrl}/api/echo/…)
    admin           ${gateway.adminUrl}/healthz · /readyz · /metrics

  Open ${gatewayUrl}/ — sign in with any user name (any password).
  Ctrl+C stops everything.
`);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log(`\n${signal}: stopping the demo`);
  await gateway.close(2_000);
  await Promise.all([api.close(), idp.close()]);
  rmSync(workDir, { recursive: true, force: true });
  process.exit(0);
}
process.once('SIGINT', () => void shutdown('SIGINT'));
process.once('SIGTERM', () => void shutdown('SIGTERM'));

/** A port of the demo's already taken: one sentence saying which and what to do, not a stack trace. */
function busyPort(err: unknown): never {
  if (err instanceof Error && 'code' in err && err.code === 'EADDRINUSE') {
    const taken = 'port' in err ? `port ${String(err.port)}` : 'one of its ports';
    console.error(
      `The demo cannot start: ${taken} is already in use. Stop what uses it, or choose other ports: DEMO_PORT=4000 npm run demo (the demo uses DEMO_PORT, the two ports after it and DEMO_PORT + 90).`,
    );
    process.exit(1);
  }
  throw err;
}
