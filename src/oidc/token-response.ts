import type * as client from 'openid-client';
import type { TokenSet } from './token-set.ts';

/** The authorization request with one `resource` parameter per resource (RFC 8707 §2), or as it is when there are none. */
export function withResources(parameters: Record<string, string>, resources: readonly string[]): Record<string, string> | URLSearchParams {
  if (resources.length === 0) return parameters;
  const request = new URLSearchParams(parameters);
  for (const resource of resources) request.append('resource', resource);
  return request;
}

/** The gateway's view of a token endpoint answer, with absolute expiry times. */
export function tokenSet(response: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers): TokenSet {
  const now = Date.now();
  const expiresIn = response.expiresIn();
  // Not in RFC 6749, but Keycloak and others state it; the session must not outlive its refresh token.
  const refreshExpiresIn = typeof response.refresh_expires_in === 'number' && response.refresh_expires_in > 0 ? response.refresh_expires_in : undefined;
  return {
    accessToken: response.access_token,
    ...(expiresIn !== undefined ? { accessTokenExpiresAt: now + expiresIn * 1000, accessTokenIssuedAt: now } : {}),
    ...(response.refresh_token ? { refreshToken: response.refresh_token } : {}),
    ...(response.refresh_token && refreshExpiresIn !== undefined ? { refreshTokenExpiresAt: now + refreshExpiresIn * 1000 } : {}),
    ...(response.id_token ? { idToken: response.id_token } : {}),
    tokenType: response.token_type,
    ...(response.scope ? { scope: response.scope } : {}),
  };
}
