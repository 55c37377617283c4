import { performance } from 'node:perf_hooks';
import type { IdpFetch } from '../oidc/discovery-probe.ts';

export type IdpRequestObserver = (endpoint: string, seconds: number, failed: boolean) => void;

/** Discovery document fields that name the endpoints the gateway calls, and the label each gets. */
const ENDPOINT_FIELDS: ReadonlyArray<readonly [string, string]> = [
  ['token_endpoint', 'token'],
  ['pushed_authorization_request_endpoint', 'par'],
  ['userinfo_endpoint', 'userinfo'],
  ['revocation_endpoint', 'revocation'],
  ['introspection_endpoint', 'introspection'],
  ['jwks_uri', 'jwks'],
];

/**
 * A `fetch` for openid-client (its `customFetch` hook) that times each
 * request to the OpenID provider up to its response headers, labelled by
 * endpoint. The endpoint URLs are learnt from the discovery document as it
 * passes by, so the labels are the same whatever the provider's URL layout.
 * URLs never become labels: anything unrecognised is `other`.
 */
export function timedIdpFetch(observe: IdpRequestObserver): IdpFetch {
  const endpoints = new Map<string, string>();
  return async (url, options) => {
    const endpoint = endpointOf(url, endpoints);
    const startedAt = performance.now();
    let response: Response;
    try {
      response = await fetch(url, options);
    } catch (err) {
      observe(endpoint, (performance.now() - startedAt) / 1000, true);
      throw err;
    }
    observe(endpoint, (performance.now() - startedAt) / 1000, response.status >= 500);
    if (endpoint === 'discovery' && response.ok) await learn(response, endpoints);
    return response;
  };
}

function endpointOf(url: string, endpoints: ReadonlyMap<string, string>): string {
  const queryAt = url.indexOf('?');
  const bare = queryAt < 0 ? url : url.slice(0, queryAt);
  const known = endpoints.get(bare);
  if (known) return known;
  return bare.includes('/.well-known/') ? 'discovery' : 'other';
}

async function learn(response: Response, endpoints: Map<string, string>): Promise<void> {
  let metadata: unknown;
  try {
    metadata = await response.clone().json();
  } catch {
    // openid-client reports a malformed document itself.
    return;
  }
  if (typeof metadata !== 'object' || metadata === null) return;
  for (const [field, label] of ENDPOINT_FIELDS) {
    const value = (metadata as Record<string, unknown>)[field];
    if (typeof value === 'string') endpoints.set(value, label);
  }
}
