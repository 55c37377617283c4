import { createClient } from '@redis/client';
import { startEcho, type EchoServer } from './echo.ts';
import { reserveGatewayUrl, startTestGateway, type TestGateway, type TestGatewayOptions } from './gateway.ts';
import { startIdp, type IdpOptions, type TestIdp } from './idp.ts';
import { testRedisUrl } from './redis.ts';

export type Stack = {
  idp: TestIdp;
  echo: EchoServer;
  gw: TestGateway;
  /** Token endpoint responses the IdP sent, to look for the tokens where they must not be. */
  tokenResponses: Array<Record<string, unknown>>;
  close(): Promise<void>;
};

export type StackOptions = {
  /** Routes; `ECHO` as a target is replaced by the echo upstream's URL. */
  routes?: Array<Record<string, unknown>>;
  env?: Record<string, string>;
  store?: TestGatewayOptions['store'];
  idp?: IdpOptions;
  /** Register the gateway's back-channel logout URI at the IdP. */
  backchannel?: boolean;
};

/** A real IdP, a real echo upstream and a real gateway wired to both (and to the test Redis). */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const url = await reserveGatewayUrl();
  const idp = await startIdp({
    redirectUris: [`${url}/auth/callback`],
    postLogoutRedirectUris: [`${url}/`],
    ...(options.backchannel ? { backchannelLogoutUri: `${url}/auth/backchannel-logout` } : {}),
    ...options.idp,
  });
  const tokenResponses: Array<Record<string, unknown>> = [];
  idp.provider.on('grant.success', (ctx) => {
    if (ctx.body && typeof ctx.body === 'object') tokenResponses.push({ ...(ctx.body as Record<string, unknown>) });
  });
  const echo = await startEcho();
  const routes = (options.routes ?? [{ prefix: '/api/echo', target: 'ECHO', token: 'user' }]).map((r) => ({ ...r, target: r.target === 'ECHO' ? echo.url : r.target }));
  const gw = await startTestGateway({ url, issuer: idp.issuer, routes, ...(options.env ? { env: options.env } : {}), ...(options.store ? { store: options.store } : {}) });
  return {
    idp,
    echo,
    gw,
    tokenResponses,
    async close() {
      await gw.close();
      await echo.close();
      await idp.close();
    },
  };
}

/** A raw Redis client on the test redis-server (database `db`), to look at what the gateway stored. */
export async function rawRedis(db = 0) {
  const client = createClient({ url: testRedisUrl(db) });
  await client.connect();
  return client;
}

/** The `bff` (or configured) cookie's `name=value` out of a Set-Cookie list, if set. */
export function setCookie(headers: Record<string, unknown>, name: string): string | undefined {
  const list = headers['set-cookie'];
  const all = Array.isArray(list) ? (list as string[]) : typeof list === 'string' ? [list] : [];
  return all.find((c) => c.startsWith(`${name}=`));
}
