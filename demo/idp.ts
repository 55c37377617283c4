import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { Provider, type Account, type Configuration, type JWK } from 'oidc-provider';

export const DEMO_CLIENT_ID = 'bff-demo';
export const DEMO_CLIENT_SECRET = 'bff-demo-secret-not-for-production-use';
export const DEMO_API_CLIENT_ID = 'demo-api';
export const DEMO_API_CLIENT_SECRET = 'demo-api-secret-not-for-production-use';

export type DemoIdp = {
  /** http://localhost:<port> */
  issuer: string;
  /** For tests that watch the provider's events (grants, refreshes) from outside the gateway. */
  provider: Provider;
  close(): Promise<void>;
};

/**
 * The demo's OpenID provider: oidc-provider with its built-in login and consent pages,
 * where any user name signs in. It lives on `localhost` while the gateway lives on
 * `127.0.0.1`, because browsers do not scope cookies by port.
 */
export async function startDemoIdp(options: {
  port: number;
  gatewayUrl: string;
  /** Seconds; default 120. The end-to-end test shortens it to watch a refresh happen. */
  accessTokenTtl?: number;
  /** Listen address; default 127.0.0.1 (a container needs 0.0.0.0). */
  host?: string;
  /** Default `http://localhost:<port>`; in a container, a name both the browser and the gateway resolve. */
  issuer?: string;
}): Promise<DemoIdp> {
  const issuer = options.issuer ?? `http://localhost:${options.port}`;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'demo-rs256', alg: 'RS256', use: 'sig' } as JWK;

  const configuration: Configuration = {
    clients: [
      {
        client_id: DEMO_CLIENT_ID,
        client_secret: DEMO_CLIENT_SECRET,
        client_name: 'bff-gateway demo',
        redirect_uris: [`${options.gatewayUrl}/auth/callback`],
        post_logout_redirect_uris: [`${options.gatewayUrl}/`],
        backchannel_logout_uri: `${options.gatewayUrl}/auth/backchannel-logout`,
        backchannel_logout_session_required: true,
        grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      {
        // The sample API: a resource server that only introspects.
        client_id: DEMO_API_CLIENT_ID,
        client_secret: DEMO_API_CLIENT_SECRET,
        grant_types: [],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    jwks: { keys: [signingKey] },
    // Fresh per run: the demo keeps no state across restarts anyway.
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
      introspection: {
        enabled: true,
        allowedPolicy: async (_ctx, client, token) => client.clientId === DEMO_API_CLIENT_ID || token.clientId === client.clientId,
      },
      rpInitiatedLogout: { enabled: true },
      backchannelLogout: { enabled: true },
      clientCredentials: { enabled: true },
      pushedAuthorizationRequests: { enabled: true },
    },
    claims: {
      acr: null,
      sid: null,
      auth_time: null,
      iss: null,
      openid: ['sub'],
      profile: ['name', 'given_name', 'family_name'],
      email: ['email', 'email_verified'],
    },
    // Profile claims in the ID token, so the gateway shows them without a userinfo call.
    conformIdTokenClaims: false,
    findAccount: (_ctx, sub) => demoAccount(sub),
    // oidc-provider issues refresh tokens only with offline_access and prompt=consent by default.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    ttl: {
      // Short, so that the demo refreshes the access token within minutes of use.
      AccessToken: () => options.accessTokenTtl ?? 120,
      ClientCredentials: () => 120,
      AuthorizationCode: () => 60,
      IdToken: () => 3600,
      RefreshToken: () => 8 * 3600,
      Interaction: () => 3600,
      Session: () => 8 * 3600,
      Grant: () => 8 * 3600,
    },
    // oidc-provider refuses loopback addresses for outgoing requests (SSRF protection), but
    // its back-channel logout must reach the gateway on 127.0.0.1.
    fetch: (url, init) => fetch(url, { ...init, dispatcher: undefined } as RequestInit),
  };

  const provider = quietly(() => new Provider(issuer, configuration));
  const server = createServer(provider.callback());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => resolve());
  });

  return { issuer, provider, close: () => closeServer(server) };
}

function demoAccount(sub: string): Account {
  const given = sub.charAt(0).toUpperCase() + sub.slice(1);
  return {
    accountId: sub,
    claims: () => ({
      sub,
      name: `${given} Demo`,
      given_name: given,
      family_name: 'Demo',
      email: `${sub}@example.com`,
      email_verified: true,
    }),
  };
}

/**
 * oidc-provider warns, in red, that its in-memory storage and built-in login pages are for
 * development only: exactly what this demo IdP is, and says so itself (see run.ts and
 * idp-server.ts). Those two warnings are held back; any other is printed.
 */
function quietly<T>(construct: () => T): T {
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (typeof args[0] === 'string' && args[0].includes('quick start development-only')) return;
    warn(...args);
  };
  try {
    return construct();
  } finally {
    console.warn = warn;
  }
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
