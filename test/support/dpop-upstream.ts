import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { calculateJwkThumbprint, decodeJwt, EmbeddedJWK, jwtVerify, type JWK } from 'jose';
import { WebSocketServer } from 'ws';
import type { TestIdp } from './idp.ts';

/** What the resource server made of one request (HTTP or WebSocket handshake). */
export type DpopCheck = {
  method: string;
  path: string;
  /** Set when every check passed; otherwise `error` names the first that failed. */
  ok: boolean;
  error?: string;
  /** Thumbprint of the proof's key. */
  proofJkt?: string;
  /** The access token's `cnf.jkt` (JWT claim, else the IdP's introspection answer). */
  tokenJkt?: string;
  jti?: string;
  iat?: number;
  nonce?: string;
  /** Bytes of request body received. */
  bodyBytes: number;
  websocket: boolean;
};

export type DpopUpstream = {
  /** http://127.0.0.1:<port> */
  url: string;
  readonly checks: DpopCheck[];
  /** Demand this server's current nonce in every proof (RFC 9449 §9); off by default. */
  requireNonce: boolean;
  /** A new nonce: proofs carrying the old one are challenged again. */
  rotateNonce(): void;
  close(): Promise<void>;
};

const MAX_PROOF_AGE_SEC = 60;

/**
 * A resource server that verifies DPoP as RFC 9449 §7 asks of one, with jose:
 * `Authorization: DPoP <token>`; a proof with typ `dpop+jwt` whose signature
 * verifies against its header's JWK; `htm` and `htu` equal to this request
 * (`htu` from this server's own origin and the path without query); `iat`
 * fresh; `jti` never seen before; `ath` the token's SHA-256; the token's
 * `cnf.jkt` (JWT, or introspected at the IdP for an opaque token) the proof
 * key's thumbprint; and, when asked, this server's nonce. Answers 200 with
 * what it found, or 401 with `WWW-Authenticate: DPoP error=…`. WebSocket
 * handshakes are checked the same way before they are accepted (an echo).
 */
export async function startDpopUpstream(idp: TestIdp): Promise<DpopUpstream> {
  const seenJti = new Set<string>();
  const checks: DpopCheck[] = [];
  let nonce = randomBytes(12).toString('base64url');
  let origin = '';

  async function verify(req: IncomingMessage, bodyBytes: number, websocket: boolean, state: { requireNonce: boolean }): Promise<DpopCheck> {
    const path = req.url ?? '/';
    const check: DpopCheck = { method: req.method ?? '', path, ok: false, bodyBytes, websocket };
    const fail = (error: string): DpopCheck => ({ ...check, error });
    const token = /^DPoP (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (token === undefined) return fail('no_dpop_authorization');
    const proof = req.headers.dpop;
    if (typeof proof !== 'string') return fail('no_dpop_proof');
    let verified;
    try {
      verified = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: ['ES256', 'EdDSA'] });
    } catch {
      return fail('bad_proof_signature');
    }
    const { payload, protectedHeader } = verified;
    check.proofJkt = await calculateJwkThumbprint(protectedHeader.jwk as JWK);
    check.jti = typeof payload.jti === 'string' ? payload.jti : undefined;
    check.iat = payload.iat;
    check.nonce = typeof payload.nonce === 'string' ? payload.nonce : undefined;
    if (payload.htm !== req.method) return fail('htm_mismatch');
    if (payload.htu !== origin + path.split('?')[0]) return fail('htu_mismatch');
    if (typeof payload.iat !== 'number' || Math.abs(Date.now() / 1000 - payload.iat) > MAX_PROOF_AGE_SEC) return fail('iat_not_fresh');
    if (check.jti === undefined || seenJti.has(check.jti)) return fail('jti_replayed');
    seenJti.add(check.jti);
    if (payload.ath !== createHash('sha256').update(token).digest('base64url')) return fail('ath_mismatch');
    check.tokenJkt = await tokenJkt(idp, token);
    if (check.tokenJkt !== check.proofJkt) return fail('cnf_jkt_mismatch');
    if (state.requireNonce && check.nonce !== nonce) return fail('use_dpop_nonce');
    return { ...check, ok: true };
  }

  const challenge = (error: string): Record<string, string> => ({
    'www-authenticate': `DPoP error="${error}", algs="ES256 EdDSA"`,
    ...(error === 'use_dpop_nonce' ? { 'dpop-nonce': nonce } : {}),
  });

  const upstream: DpopUpstream = {
    url: '',
    checks,
    requireNonce: false,
    rotateNonce() {
      nonce = randomBytes(12).toString('base64url');
    },
    close: async () => undefined,
  };

  const server = createServer((req, res) => {
    let bytes = 0;
    req.on('data', (chunk: Buffer) => (bytes += chunk.length));
    req.on('end', () => {
      void verify(req, bytes, false, upstream).then((check) => {
        checks.push(check);
        const body = JSON.stringify(check);
        const headers = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) };
        if (check.ok) res.writeHead(200, headers);
        else res.writeHead(401, { ...headers, ...challenge(check.error === 'use_dpop_nonce' ? 'use_dpop_nonce' : 'invalid_dpop_proof') });
        res.end(body);
      });
    });
  });
  const wss = new WebSocketServer({ noServer: true });
  wss.on('connection', (socket) => socket.on('message', (data) => socket.send(`echo:${data.toString()}`)));
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    void verify(req, 0, true, upstream).then((check) => {
      checks.push(check);
      if (!check.ok) return void socket.end(`HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  upstream.url = origin;
  upstream.close = async () => {
    for (const client of wss.clients) client.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return upstream;
}

/** `cnf.jkt` of a JWT access token, or what the IdP's introspection says of an opaque one. */
export async function tokenJkt(idp: TestIdp, token: string): Promise<string | undefined> {
  if (token.split('.').length === 3) return (decodeJwt(token).cnf as { jkt?: string } | undefined)?.jkt;
  const answer = await idp.introspect(token);
  return (answer.cnf as { jkt?: string } | undefined)?.jkt;
}
