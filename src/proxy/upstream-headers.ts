import type { OutgoingHttpHeaders } from 'node:http';
import { withoutGatewayCookies } from './gateway-cookies.ts';
import { connectionNamed } from './headers.ts';

/** Response headers that describe the upstream hop, not the response (Node frames the answer to the browser itself). */
const HOP_BY_HOP_RESPONSE = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'trailer', 'upgrade', 'transfer-encoding']);
/**
 * Headers that hold one value: a repeated one keeps its first (as Node's own
 * parser does). A second `Content-Length` or `Location` would otherwise reach
 * the browser as an ambiguous message.
 */
const SINGLE_VALUE = new Set([
  'content-type',
  'content-length',
  'location',
  'etag',
  'last-modified',
  'expires',
  'age',
  'retry-after',
  'server',
  'content-encoding',
  'content-range',
  'content-location',
]);

/** An upstream's response headers as undici gives them: lower-case names, repeated ones as arrays. */
export type UpstreamHeaders = Record<string, string | string[] | undefined>;

/** What became of the upstream's headers: those for the browser, and whether a gateway cookie was dropped (worth a warning). */
export interface BrowserHeaders {
  headers: OutgoingHttpHeaders;
  droppedGatewayCookie: boolean;
}

/**
 * The upstream's response headers as the browser gets them: without
 * hop-by-hop headers (and those its `Connection` names), and without any
 * `Set-Cookie` for the gateway's own cookies.
 */
export function browserHeaders(incoming: UpstreamHeaders, gatewayCookies: readonly string[]): BrowserHeaders {
  const connection = incoming.connection;
  const named = connectionNamed(Array.isArray(connection) ? connection.join(',') : connection, false);
  const headers: OutgoingHttpHeaders = {};
  for (const name in incoming) {
    if (HOP_BY_HOP_RESPONSE.has(name) || named?.has(name) === true) continue;
    const value = incoming[name];
    headers[name] = Array.isArray(value) && SINGLE_VALUE.has(name) ? value[0] : value;
  }
  let droppedGatewayCookie = false;
  const setCookie = headers['set-cookie'];
  if (setCookie !== undefined) {
    const all = Array.isArray(setCookie) ? setCookie : [String(setCookie)];
    const kept = withoutGatewayCookies(all, gatewayCookies);
    droppedGatewayCookie = kept.length !== all.length;
    if (kept.length) headers['set-cookie'] = kept;
    else delete headers['set-cookie'];
  }
  return { headers, droppedGatewayCookie };
}
