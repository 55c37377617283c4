/** The tokens the gateway holds for a session, as the token endpoint issued them. */
export interface TokenSet {
  accessToken: string;
  /** Epoch milliseconds; undefined when the IdP did not say. */
  accessTokenExpiresAt?: number;
  /** Epoch milliseconds at which the access token was received. */
  accessTokenIssuedAt?: number;
  refreshToken?: string;
  /** Epoch milliseconds, when the IdP states it (`refresh_expires_in`, as Keycloak does). */
  refreshTokenExpiresAt?: number;
  idToken?: string;
  tokenType: string;
  scope?: string;
}

/** What a token exchange (RFC 8693 §2.1) asks the IdP for. */
export interface ExchangeTarget {
  audience?: string;
  resource?: string;
  scope?: string;
}
