import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export type DemoApiOptions = {
  port: number;
  introspectionUrl: string;
  clientId: string;
  clientSecret: string;
};

export type DemoApi = {
  url: string;
  close(): Promise<void>;
};

/**
 * A sample upstream API, written the way a real resource server behind the gateway would
 * be: it trusts nothing but the bearer token, which it checks by introspection (RFC 7662).
 */
export async function startDemoApi(options: DemoApiOptions): Promise<DemoApi> {
  const server = createServer((req, res) => {
    // The demo API reads no bodies; drain them so keep-alive connections stay usable.
    req.resume();
    handle(req, res, options).catch((err: unknown) => {
      console.error('demo API:', err);
      send(res, 502, { error: 'introspection_unavailable', message: 'the sample API could not reach the IdP' });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', () => resolve());
  });
  return { url: `http://127.0.0.1:${options.port}`, close: () => closeServer(server) };
}

async function handle(req: IncomingMessage, res: ServerResponse, options: DemoApiOptions): Promise<void> {
  const token = /^Bearer ([^\s]+)$/i.exec(req.headers.authorization ?? '')?.[1];
  if (token === undefined) {
    send(res, 401, { error: 'invalid_token', message: 'no bearer token' }, { 'www-authenticate': 'Bearer' });
    return;
  }

  const introspection = await introspect(token, options);
  if (introspection.active !== true) {
    send(res, 401, { error: 'invalid_token', message: 'the token is not active' }, { 'www-authenticate': 'Bearer error="invalid_token"' });
    return;
  }

  send(res, 200, {
    message: 'Hello from the sample API',
    method: req.method,
    path: req.url,
    // What the IdP says about the token: its subject, client, scope and lifetime, never the token itself.
    tokenClaims: introspection,
    // Should stay false: the gateway strips the browser's cookies before proxying.
    receivedCookieHeader: req.headers.cookie !== undefined,
    // Facts for the page's "what just happened" panel (never the token itself).
    receivedBearerToken: true,
    receivedCsrfHeader: req.headers['x-csrf'] === '1',
  });
}

async function introspect(token: string, options: DemoApiOptions): Promise<Record<string, unknown>> {
  const credentials = Buffer.from(`${encodeURIComponent(options.clientId)}:${encodeURIComponent(options.clientSecret)}`).toString('base64');
  const response = await fetch(options.introspectionUrl, {
    method: 'POST',
    headers: { authorization: `Basic ${credentials}`, accept: 'application/json' },
    body: new URLSearchParams({ token }),
    signal: AbortSignal.timeout(5_000),
  });
  if (!response.ok) throw new Error(`introspection answered HTTP ${response.status}`);
  return (await response.json()) as Record<string, unknown>;
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(text);
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
