// `npm run idp`: the demo's OpenID provider on its own, for trying the gateway (or your own
// build of it) against a local provider without writing code. Development only: in-memory
// storage, a login form where any user name signs in, keys made fresh at every start.
// IDP_PORT (3001), GATEWAY_URL (http://127.0.0.1:3000), and for a container IDP_HOST (listen
// address) and IDP_ISSUER (a name the browser and the gateway both resolve).
import { DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, startDemoIdp } from './idp.ts';

const port = Number(process.env.IDP_PORT ?? 3001);
const gatewayUrl = (process.env.GATEWAY_URL ?? 'http://127.0.0.1:3000').replace(/\/$/, '');
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error(`IDP_PORT must be a port number, got ${process.env.IDP_PORT}`);
  process.exit(2);
}
if (!/^https?:\/\/[^/]+$/.test(gatewayUrl)) {
  console.error(`GATEWAY_URL must be the gateway's public origin such as http://127.0.0.1:3000, got ${gatewayUrl}`);
  process.exit(2);
}

const host = process.env.IDP_HOST;
const issuer = process.env.IDP_ISSUER?.replace(/\/$/, '');
if (issuer !== undefined && !/^https?:\/\/[^/]+$/.test(issuer)) {
  console.error(`IDP_ISSUER must be an origin such as http://idp.localhost:3001, got ${issuer}`);
  process.exit(2);
}
const idp = await startDemoIdp({ port, gatewayUrl, ...(host ? { host } : {}), ...(issuer ? { issuer } : {}) }).catch((err: unknown) => {
  if (err instanceof Error && 'code' in err && err.code === 'EADDRINUSE') {
    console.error(`The development IdP cannot start: port ${port} is already in use. Choose another: IDP_PORT=4001 npm run idp`);
    process.exit(1);
  }
  throw err;
});

console.log(`
  Development OpenID provider (any user name signs in, any password)
    issuer      ${idp.issuer}
    discovery   ${idp.issuer}/.well-known/openid-configuration
    redirect    ${gatewayUrl}/auth/callback   (GATEWAY_URL=… if your gateway runs elsewhere)

  Put this in the gateway's .env:

    BFF_PUBLIC_URL=${gatewayUrl}
    BFF_ISSUER_URL=${idp.issuer}
    BFF_ALLOW_INSECURE_ISSUER=true
    BFF_CLIENT_ID=${DEMO_CLIENT_ID}
    BFF_CLIENT_SECRET=${DEMO_CLIENT_SECRET}
    BFF_SESSION_SECRETS=<a new one from: npx bff-gateway secret (in a checkout: node src/index.ts secret)>

  The IdP is on localhost and the gateway on 127.0.0.1 on purpose: browsers do not scope
  cookies by port, and the two would overwrite each other's. Ctrl+C stops it.
`);

const stop = (): void => void idp.close().then(() => process.exit(0));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
