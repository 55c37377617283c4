import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';

export type JwtUpstream = {
  /** http://127.0.0.1:<port> */
  url: string;
  /** Every bearer token received, verified or not, in arrival order. */
  tokens: string[];
  close(): Promise<void>;
};

/**
 * A resource server as a real API would be one: it verifies the bearer JWT
 * with jose against the IdP's JWKS, checks the issuer and that `aud` is its
 * own audience, and answers 200 with the token's claims, or 401 naming the
 * check that failed (jose's error code).
 */
export async function startJwtUpstream(options: { issuer: string; audience: string }): Promise<JwtUpstream> {
  const metadata = (await (await fetch(`${options.issuer}/.well-known/openid-configuration`)).json()) as { jwks_uri: string };
  const jwks = createRemoteJWKSet(new URL(metadata.jwks_uri));
  const tokens: string[] = [];
  const server = createServer((req, res) => {
    const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (token !== undefined) tokens.push(token);
    const answer = (status: number, body: Record<string, unknown>): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (token === undefined) return answer(401, { error: 'no_bearer_token' });
    jwtVerify(token, jwks, { issuer: options.issuer, audience: options.audience, algorithms: ['RS256'] }).then(
      ({ payload }: { payload: JWTPayload }) => answer(200, { claims: payload }),
      (err: unknown) => answer(401, { error: (err as { code?: string }).code ?? 'invalid_token' }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    tokens,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
