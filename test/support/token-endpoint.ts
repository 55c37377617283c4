import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';

/**
 * How the token endpoint answers a request, to play the providers that
 * behave differently from oidc-provider.
 */
export type TokenAnswer =
  /** An RFC 6749 §5.2 error document (status 400 unless given), optionally with a `WWW-Authenticate` challenge. */
  | { error: string; status?: number; description?: string; wwwAuthenticate?: string }
  /** Any other answer: a 500 error page, a 401 with a challenge and no body, a 429 without an error code. */
  | { status: number; body?: string; contentType?: string; wwwAuthenticate?: string }
  /** Read the request, then close the connection without a word (a crashed or cut-off provider). */
  | { drop: true }
  /** The provider answers, minus these fields of its JSON (e.g. `refresh_token`: a provider that never rotates or repeats it). */
  | { strip: string[] };

interface Rule {
  grantType: string;
  answer: TokenAnswer;
  /** Requests left to answer so; Infinity until cleared. */
  left: number;
}

/**
 * A small programmable HTTP proxy in front of the test IdP's token endpoint:
 * every token request passes through it over real HTTP. It counts the
 * requests by grant type (whether or not the provider issued anything) and,
 * when told to, answers in place of the provider the way real providers
 * do: refusals with other error codes, challenges, 5xx, dropped
 * connections, responses without a rotated refresh token.
 */
export class ProgrammableTokenEndpoint {
  private readonly rules: Rule[] = [];
  private readonly counts = new Map<string, number>();
  /** Where the provider itself listens (a private server the proxy forwards to). */
  private readonly target: () => { port: number };

  constructor(target: () => { port: number }) {
    this.target = target;
  }

  /** Answers requests of this grant type so: every one until `clear()`, or the next `times`. */
  answer(grantType: string, answer: TokenAnswer, times = Infinity): void {
    this.rules.push({ grantType, answer, left: times });
  }

  /** Back to the provider's own answers. */
  clear(): void {
    this.rules.length = 0;
  }

  /** Token requests received for this grant type (`authorization_code`, `refresh_token`, ...), whoever answered them. */
  requests(grantType: string): number {
    return this.counts.get(grantType) ?? 0;
  }

  resetCounts(): void {
    this.counts.clear();
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const grantType = new URLSearchParams(body.toString('utf8')).get('grant_type') ?? '';
      this.counts.set(grantType, this.requests(grantType) + 1);
      const rule = this.rules.find((r) => r.grantType === grantType && r.left > 0);
      if (rule) rule.left -= 1;
      const answer = rule?.answer;
      if (answer === undefined) return this.forward(req, body, res, []);
      if ('drop' in answer) return void res.socket?.destroy();
      if ('strip' in answer) return this.forward(req, body, res, answer.strip);
      if ('error' in answer) {
        const document = JSON.stringify({ error: answer.error, ...(answer.description ? { error_description: answer.description } : {}) });
        return send(res, answer.status ?? 400, document, 'application/json', answer.wwwAuthenticate);
      }
      send(res, answer.status, answer.body ?? '', answer.contentType ?? 'text/plain', answer.wwwAuthenticate);
    });
  }

  private forward(req: IncomingMessage, body: Buffer, res: ServerResponse, strip: readonly string[]): void {
    const upstream = httpRequest({ host: '127.0.0.1', port: this.target().port, method: req.method, path: req.url, headers: { ...req.headers, 'content-length': String(body.length) } }, (answer) => {
      const chunks: Buffer[] = [];
      answer.on('data', (chunk: Buffer) => chunks.push(chunk));
      answer.on('end', () => {
        let payload = Buffer.concat(chunks);
        if (strip.length > 0 && answer.statusCode === 200) payload = Buffer.from(JSON.stringify(without(JSON.parse(payload.toString('utf8')) as Record<string, unknown>, strip)));
        res.writeHead(answer.statusCode ?? 502, { ...passable(answer.headers), 'content-length': String(payload.length) });
        res.end(payload);
      });
    });
    upstream.on('error', () => res.socket?.destroy());
    upstream.end(body);
  }
}

function send(res: ServerResponse, status: number, body: string, contentType: string, wwwAuthenticate: string | undefined): void {
  res.writeHead(status, {
    'content-type': contentType,
    'cache-control': 'no-store',
    'content-length': String(Buffer.byteLength(body)),
    ...(wwwAuthenticate ? { 'www-authenticate': wwwAuthenticate } : {}),
  });
  res.end(body);
}

function without(document: Record<string, unknown>, fields: readonly string[]): Record<string, unknown> {
  const copy = { ...document };
  for (const field of fields) delete copy[field];
  return copy;
}

/** The provider's response headers, less those the proxy sets itself. */
function passable(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const { 'content-length': _length, 'transfer-encoding': _encoding, connection: _connection, 'keep-alive': _keepAlive, ...rest } = headers;
  return rest;
}
