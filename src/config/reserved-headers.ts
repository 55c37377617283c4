/**
 * Headers that describe one hop or the framing of one message. The gateway
 * frames every upstream request itself (`Host`, `Content-Length` or
 * `Transfer-Encoding`), so none of these is ever copied from the browser.
 */
export const HOP_BY_HOP_HEADERS: readonly string[] = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'upgrade',
  'host',
  'content-length',
  'transfer-encoding',
  'expect',
];

/** Headers the gateway sets itself; a browser's copy never reaches an upstream. */
export const GATEWAY_OWNED_HEADERS: readonly string[] = ['cookie', 'authorization', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-request-id', 'dpop'];

/** Prefix of the identity headers the gateway sets for upstreams that trust it. */
export const USER_HEADER_PREFIX = 'x-user-';

/** What no route may pass through (`passHeaders`) or set (`headers`): the gateway owns it, or it frames the message. */
export function gatewayOwnsHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return HOP_BY_HOP_HEADERS.includes(lower) || GATEWAY_OWNED_HEADERS.includes(lower) || lower.startsWith(USER_HEADER_PREFIX);
}
