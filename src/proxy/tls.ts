import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import type { RouteConfig } from '../config/types.ts';

/**
 * TLS options for a route's https target, shared by the HTTP proxy and the
 * WebSocket handshake. An extra CA (`caFile`) is trusted in addition to the
 * system's, never instead of verification.
 */
export function upstreamTlsOptions(route: RouteConfig): { rejectUnauthorized: true; ca?: string[] } {
  if (!route.caFile) return { rejectUnauthorized: true };
  return { rejectUnauthorized: true, ca: [...tls.rootCertificates, readFileSync(route.caFile, 'utf8')] };
}
