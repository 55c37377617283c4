import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';

/** RFC 9110 hop-by-hop headers, plus the de-facto ones; `transfer-encoding` is left to Node, which re-frames the body itself. */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'upgrade'];

/** Headers the browser must never be able to set on an upstream request. */
const BROWSER_ONLY = ['cookie', 'authorization', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'forwarded', 'x-real-ip'];

export interface UpstreamIdentity {
  publicHost: string;
  publicProto: string;
  /** Client address chain as Express resolved it under `trust proxy`. */
  forwardedFor: string;
  requestId: string;
  accessToken?: string;
}

/**
 * Rewrites the incoming headers in place into what the upstream should see.
 * The proxy copies `req.headers` once when it builds the upstream request, so
 * doing it here costs no extra copy and applies to WebSocket handshakes too.
 */
export function prepareUpstreamHeaders(req: IncomingMessage, identity: UpstreamIdentity, keepUpgrade = false): void {
  const headers: IncomingHttpHeaders = req.headers;
  const connection = headers.connection;
  if (typeof connection === 'string') {
    for (const token of connection.split(',')) {
      const name = token.trim().toLowerCase();
      if (name && !(keepUpgrade && name === 'upgrade')) delete headers[name];
    }
  }
  for (const name of HOP_BY_HOP) if (!(keepUpgrade && (name === 'connection' || name === 'upgrade'))) delete headers[name];
  for (const name of BROWSER_ONLY) delete headers[name];
  if (identity.accessToken) headers.authorization = `Bearer ${identity.accessToken}`;
  headers['x-forwarded-for'] = identity.forwardedFor;
  headers['x-forwarded-proto'] = identity.publicProto;
  headers['x-forwarded-host'] = identity.publicHost;
  headers['x-request-id'] = identity.requestId;
}
