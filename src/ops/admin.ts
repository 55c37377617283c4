import http from 'node:http';
import type { Registry } from 'prom-client';

export interface Readiness {
  /** Resolves when the store under sessions and everything else answers (the in-memory one always does); rejects otherwise. */
  pingStore(): Promise<void>;
  idpReady(): boolean;
  /** True once graceful shutdown has begun: the load balancer must stop sending traffic. */
  draining(): boolean;
}

/** One instance's readiness checks, as a worker also reports them to the cluster primary. */
export interface ReadinessChecks {
  store: boolean;
  idp: boolean;
  draining: boolean;
}

export interface ReadinessAnswer {
  ready: boolean;
  body: Record<string, unknown>;
}

/**
 * What the admin port reports. One process answers for itself; a cluster
 * primary answers for its workers (it asks them over IPC on every probe).
 */
export interface AdminProbes {
  /** Liveness beyond "this process answers" (a cluster primary needs a worker); absent: always live. */
  live?(): boolean;
  readiness(): Promise<ReadinessAnswer>;
  metrics(): Promise<string>;
  contentType: string;
}

/** Redis must answer a PING within this long for the gateway to count as ready (docs/operations.md). */
const PING_TIMEOUT_MS = 500;

/** The body of /readyz during shutdown, for one process and for a cluster primary alike. */
export const SHUTTING_DOWN: ReadinessAnswer = { ready: false, body: { status: 'shutting down', checks: { draining: true } } };

/**
 * The ops port: liveness, readiness and Prometheus metrics, apart from user
 * traffic. Readiness is computed on every probe, never cached, so that it
 * flips back by itself as soon as a dependency recovers.
 */
export function createAdminServer(probes: AdminProbes): http.Server {
  return http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { status: 'method not allowed' });
    // Liveness: the process serves. Never depends on Redis or the IdP, or an outage would restart every pod.
    if (path === '/healthz') return probes.live === undefined || probes.live() ? send(res, 200, { status: 'ok' }) : send(res, 503, { status: 'no worker running' });
    if (path === '/readyz') {
      probes.readiness().then(
        (answer) => send(res, answer.ready ? 200 : 503, answer.body),
        () => send(res, 503, { status: 'not ready' }),
      );
      return;
    }
    if (path === '/metrics') {
      probes.metrics().then(
        (text) => {
          res.writeHead(200, { 'Content-Type': probes.contentType, 'Cache-Control': 'no-store' });
          res.end(text);
        },
        () => send(res, 500, { status: 'metrics collection failed' }),
      );
      return;
    }
    send(res, 404, { status: 'not found' });
  });
}

/** The probes of one gateway process answering for itself. */
export function instanceProbes(readiness: Readiness, registry: Registry): AdminProbes {
  return {
    async readiness() {
      const checks = await checkReady(readiness);
      if (checks.draining) return SHUTTING_DOWN;
      const ready = checks.store && checks.idp;
      return { ready, body: { status: ready ? 'ready' : 'not ready', checks: { store: checks.store, idp: checks.idp } } };
    },
    metrics: () => registry.metrics(),
    contentType: registry.contentType,
  };
}

/** Every readiness check, computed now; draining first, so that a probe during shutdown does not wait for Redis. */
export async function checkReady(readiness: Readiness): Promise<ReadinessChecks> {
  if (readiness.draining()) return { store: false, idp: readiness.idpReady(), draining: true };
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timeout')), PING_TIMEOUT_MS);
  });
  const store = await Promise.race([readiness.pingStore(), timeout]).then(
    () => true,
    () => false,
  );
  clearTimeout(timer);
  return { store, idp: readiness.idpReady(), draining: readiness.draining() };
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
  res.end(JSON.stringify(body));
}
