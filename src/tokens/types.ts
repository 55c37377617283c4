/** The tokens the gateway holds for a session, as the token endpoint issued them. */
export interface TokenSet {
  accessToken: string;
  /** Epoch milliseconds; undefined when the IdP did not say. */
  accessTokenExpiresAt?: number;
  refreshToken?: string;
  idToken?: string;
  tokenType: string;
  scope?: string;
}
