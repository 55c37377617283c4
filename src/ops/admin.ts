import http from 'node:http';
import { collectDefaultMetrics, Registry } from 'prom-client';

export interface Readiness {
  /** Resolves when the session store answers; rejects otherwise. */
  pingStore(): Promise<void>;
  idpReady(): boolean;
}

const PING_TIMEOUT_MS = 500;

/** The ops port: liveness, readiness and Prometheus metrics, apart from user traffic. */
export function createAdminServer(readiness: Readiness, registry: Registry = new Registry()): http.Server {
  collectDefaultMetrics({ register: registry });
  return http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { status: 'method not allowed' });
    if (path === '/healthz') return send(res, 200, { status: 'ok' });
    if (path === '/readyz') {
      void checkReady(readiness).then((checks) => send(res, checks.store && checks.idp ? 200 : 503, { status: checks.store && checks.idp ? 'ready' : 'not ready', checks }));
      return;
    }
    if (path === '/metrics') {
      void registry.metrics().then((text) => {
        res.writeHead(200, { 'Content-Type': registry.contentType });
        res.end(text);
      });
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
