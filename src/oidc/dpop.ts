import * as client from 'openid-client';
import { cryptoKeyPairOf, type DpopKey, type DpopKeys, type DpopPrivateJwk } from '../dpop/keys.ts';
import { IdpInvalidResponseError } from './errors.ts';

/** Token endpoint answers that did not bind the token to the proof's key. */
export const DPOP_NOT_HONOURED = 'dpop_not_honoured';

const MAX_HANDLES = 10_000;

/**
 * openid-client's DPoP handles, one per key and kept (bounded): a handle
 * remembers the IdP's `DPoP-Nonce`, so that only the first request of a key
 * needs the `use_dpop_nonce` round trip, which openid-client makes itself
 * (once) when given the handle.
 */
export class DpopHandles {
  readonly keys: DpopKeys;
  private readonly handles = new Map<string, client.DPoPHandle>();
  private configuration: client.Configuration | undefined;

  constructor(keys: DpopKeys) {
    this.keys = keys;
  }

  /** The options for a token request signed with `jwk` (a session's key), or with the gateway's key when there is none. */
  options(configuration: client.Configuration, jwk?: DpopPrivateJwk): { DPoP: client.DPoPHandle } {
    return { DPoP: this.handle(configuration, jwk === undefined ? this.keys.gatewayKey : this.keys.load(jwk)) };
  }

  private handle(configuration: client.Configuration, key: DpopKey): client.DPoPHandle {
    // A new discovery result is a new configuration: handles of the old one go.
    if (configuration !== this.configuration) {
      this.handles.clear();
      this.configuration = configuration;
    }
    let handle = this.handles.get(key.jkt);
    if (handle === undefined) {
      if (this.handles.size >= MAX_HANDLES) this.handles.delete(this.handles.keys().next().value as string);
      handle = client.getDPoPHandle(configuration, cryptoKeyPairOf(key));
      this.handles.set(key.jkt, handle);
    }
    return handle;
  }
}

/**
 * Under `BFF_DPOP=true` a Bearer token is refused: the IdP ignored the proof
 * (no DPoP support, or DPoP off for this client), and sending such a token on
 * as if it were bound would silently drop the protection the operator asked for.
 */
export function requireDpopBound<T extends { token_type: string }>(response: T): T {
  if (response.token_type.toLowerCase() !== 'dpop') throw new IdpInvalidResponseError(DPOP_NOT_HONOURED);
  return response;
}
