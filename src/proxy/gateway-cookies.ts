/**
 * An upstream shares the gateway's origin, so a `Set-Cookie` it sends lands in
 * the browser's jar for the gateway. Those naming the gateway's own cookies
 * (session, login transaction) would let an upstream replace or delete the
 * session: they are dropped, on HTTP responses and WebSocket handshakes alike.
 */
export function withoutGatewayCookies(setCookies: readonly string[], gatewayCookies: readonly string[]): string[] {
  return setCookies.filter((cookie) => !isGatewayCookie(cookie, gatewayCookies));
}

export function isGatewayCookie(setCookie: string, gatewayCookies: readonly string[]): boolean {
  const eq = setCookie.indexOf('=');
  // A Set-Cookie without '=' names no cookie (browsers ignore it or treat it as a nameless value): keep it.
  return eq >= 0 && gatewayCookies.includes(setCookie.slice(0, eq).trim());
}
