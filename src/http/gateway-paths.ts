const GATEWAY_OWN = /^\/(api|auth)(\/|$)/;

/** `/api` and `/auth` (and what lies under them) belong to the gateway: never the SPA's files, shell or dev server. */
export function isGatewayPath(path: string): boolean {
  return GATEWAY_OWN.test(path);
}
