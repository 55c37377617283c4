import * as client from 'openid-client';

/** The provider's discovery document, as openid-client parses it. */
export type ProviderMetadata = client.ServerMetadata;

/** The `fetch` openid-client calls the provider with (its customFetch hook). */
export type IdpFetch = client.CustomFetch;

/**
 * One discovery request for `--check`: no retry (the gateway's own start-up
 * retries; a check reports what it saw), plain HTTP only for an http: issuer
 * (config has already refused one unless BFF_ALLOW_INSECURE_ISSUER is set).
 */
export async function discoverOnce(issuer: URL, clientId: string, timeoutMs: number): Promise<ProviderMetadata> {
  const options: client.DiscoveryRequestOptions = { timeout: Math.ceil(timeoutMs / 1000) };
  if (issuer.protocol === 'http:') options.execute = [client.allowInsecureRequests];
  return (await client.discovery(issuer, clientId, undefined, undefined, options)).serverMetadata();
}
