import http from 'node:http';
import type { Registry } from 'prom-client';

export interface Readiness {
  /** Resolves when the store under sessions and everything else answers (the in-memory one always does); rejects otherwise. */
  pingStore(): Promise<void>;
  idpReady(): boolean;
  /** True once graceful shutdown has begun: the load balancer must stop sending traffic. */
  draining(): boolean;
}

/** Redis must answer a PING within this long for the gateway to count as ready (docs/operations.md). */
const PING_TIMEOUT_MS = 500;

/**
 * The ops port: liveness, readiness and Prometheus metrics, apart from user
 * traffic. Readiness is computed on every probe, never cached, so that it
 * flips back by itself as soon as a dependency recovers.
 */
export function createAdminServer(readiness: Readiness, registry: Registry): http.Server {
  return http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { status: 'method not allowed' });
    // Liveness: the process serves. Never depends on Redis or the IdP, or an outage would restart every pod.
    if (path === '/healthz') return send(res, 200, { status: 'ok' });
    if (path === '/readyz') {
      if (readiness.draining()) return send(res, 503, { status: 'shutting down', checks: { draining: true } });
      void checkReady(readiness).then((checks) => send(res, checks.store && checks.idp ? 200 : 503, { status: checks.store && checks.idp ? 'ready' : 'not ready', checks }));
      return;
    }
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'Content-Type': registry.contentType, 'Cache-Control': 'no-store' });
          res.end(text);
        },
        () => send(res, 500, { status: 'metrics collection failed' }),
      );
      return;
    }
    send(res, 404, { status: 'not found' });
  });
}

async function checkReady(readiness: Readiness): Promise<{ store: boolean; idp: boolean }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timeout')), PING_TIMEOUT_MS);
  });
  const store = await Promise.race([readiness.pingStore(), timeout]).then(
    () => true,
    () => false,
  );
  clearTimeout(timer);
  return { store, idp: readiness.idpReady() };
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
  res.end(JSON.stringify(body));
}
