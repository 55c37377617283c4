import type { Logger } from 'pino';
import { problems } from '../http/problem-catalogue.ts';
import { describe, type OidcClient } from '../oidc/client.ts';
import { renewalTime } from './freshness.ts';

/** Used when the IdP does not say how long its token lives. */
const DEFAULT_LIFETIME_MS = 60_000;

interface CachedToken {
  accessToken: string;
  /** When to fetch a new one: expiry minus the skew. */
  renewAt: number;
}

/**
 * The gateway's own access tokens (client-credentials grant), one per
 * (scope, resource), cached until they are about to expire and fetched once
 * however many requests need one at the same time.
 */
export class ClientTokenCache {
  private readonly oidc: OidcClient;
  private readonly skewMs: number;
  private readonly logger: Logger;
  private readonly cache = new Map<string, CachedToken>();
  private readonly inflight = new Map<string, Promise<string>>();

  constructor(oidc: OidcClient, skewMs: number, logger: Logger) {
    this.oidc = oidc;
    this.skewMs = skewMs;
    this.logger = logger;
  }

  /** Resolves to a usable token or rejects with a 503 problem. */
  get(scope?: string, resource?: string): Promise<string> {
    const key = `${scope ?? ''}\n${resource ?? ''}`;
    const cached = this.cache.get(key);
    if (cached && cached.renewAt > Date.now()) return Promise.resolve(cached.accessToken);
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.fetch(key, scope, resource).finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return pending;
  }

  private async fetch(key: string, scope: string | undefined, resource: string | undefined): Promise<string> {
    const parameters: Record<string, string> = {};
    if (scope) parameters.scope = scope;
    if (resource) parameters.resource = resource;
    try {
      const tokens = await this.oidc.clientCredentials(parameters);
      const now = Date.now();
      const expiresAt = tokens.accessTokenExpiresAt ?? now + DEFAULT_LIFETIME_MS;
      const renewAt = renewalTime(expiresAt, now, this.skewMs);
      this.cache.set(key, { accessToken: tokens.accessToken, renewAt });
      return tokens.accessToken;
    } catch (err) {
      this.logger.warn({ event: 'client_credentials', reason: describe(err) }, 'client-credentials grant failed');
      throw problems.clientTokenUnavailable();
    }
  }
}
