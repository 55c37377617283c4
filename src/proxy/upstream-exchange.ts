import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { RouteConfig } from '../config/types.ts';
import type { HttpProblem } from '../http/problem.ts';
import { sendProblem } from '../http/problem.ts';
import type { RequestBody } from './request-body.ts';
import { browserHeaders, type UpstreamHeaders } from './upstream-headers.ts';
import type { UpstreamFailure } from './upstream-pool.ts';
import type { UpstreamProof } from './upstream.ts';

/** What every exchange of one route shares: its route and the route's answers to failures, challenges and nonces. */
export interface ExchangeContext {
  route: RouteConfig;
  gatewayCookies: readonly string[];
  fail(failure: UpstreamFailure | Error, res: ServerResponse): void;
  /** The problem an upstream's 401 becomes (RFC 9470), when the route declares one for it. */
  challenge: ((wwwAuthenticate: string | string[] | undefined, req: IncomingMessage) => HttpProblem | undefined) | undefined;
  retryWithNonce(statusCode: number, headers: UpstreamHeaders, body: RequestBody): boolean;
  resend(req: IncomingMessage, res: ServerResponse, body: RequestBody, proof: UpstreamProof): void;
  droppedGatewayCookie(): void;
  /** True when a request still waiting was waiting for a free connection, not for one being made. */
  waitedForConnection(): boolean;
}

const GAVE_UP = new Error('the gateway stopped waiting for this upstream request');

/**
 * One browser request's trip upstream and back, as undici's dispatch
 * handler: it relays the response as it streams, or turns it into the
 * gateway's own answer (a step-up challenge, a DPoP nonce retry, a failure).
 */
export class UpstreamExchange implements Dispatcher.DispatchHandler {
  private readonly context: ExchangeContext;
  private readonly req: IncomingMessage;
  private readonly res: ServerResponse;
  private readonly body: RequestBody;
  private readonly proof: UpstreamProof | undefined;
  private controller: Dispatcher.DispatchController | undefined;
  /** Waiting for a connection: bounded, or a slow route would hold every later request forever. */
  private busy: NodeJS.Timeout | undefined;
  /** The request was answered (busy) or its browser left before it got a connection: it must not go out. */
  private gaveUp = false;
  /** What the response's body is for: the browser, nobody (already answered), or a retry's trigger. */
  private mode: 'pending' | 'relay' | 'discard' | 'retry' = 'pending';

  constructor(context: ExchangeContext, req: IncomingMessage, res: ServerResponse, body: RequestBody, proof: UpstreamProof | undefined) {
    this.context = context;
    this.req = req;
    this.res = res;
    this.body = body;
    this.proof = proof;
    this.busy = setTimeout(this.onBusy, context.route.timeoutMs);
    // The browser went away: so does the upstream request (and its connection, which is not reusable mid-message).
    res.once('close', this.onBrowserClose);
  }

  /** Never sent after all (undici refused the request outright). */
  cancel(): void {
    this.gaveUp = true;
    this.stopWaiting();
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.stopWaiting();
    if (this.gaveUp) return controller.abort(GAVE_UP);
    this.controller = controller;
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: UpstreamHeaders, statusMessage?: string): void {
    // 1xx informational answers are the upstream's and this hop's business only.
    if (statusCode < 200) return;
    if (this.proof !== undefined && this.context.retryWithNonce(statusCode, headers, this.body)) {
      this.mode = 'retry';
      return;
    }
    const { res } = this;
    if (res.destroyed) return controller.abort(GAVE_UP);
    // Only a 401 can be an RFC 9470 challenge: every other answer passes without its headers being read.
    if (statusCode === 401 && this.context.challenge !== undefined) {
      const replaced = this.context.challenge(headers['www-authenticate'], this.req);
      if (replaced !== undefined) {
        // The upstream's own body is not the SPA's business here; it is read off so that the connection can be reused.
        this.mode = 'discard';
        return sendProblem(res, replaced);
      }
    }
    const out = browserHeaders(headers, this.context.gatewayCookies);
    if (out.droppedGatewayCookie) this.context.droppedGatewayCookie();
    if (statusMessage) res.writeHead(statusCode, statusMessage, out.headers);
    else res.writeHead(statusCode, out.headers);
    // An event stream may stay silent for a while after its headers: send them now, or EventSource
    // never reports the stream open. (Other responses keep headers and first bytes in one packet.)
    if (String(headers['content-type']).startsWith('text/event-stream')) res.flushHeaders();
    this.mode = 'relay';
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.mode !== 'relay') return;
    if (!this.res.write(chunk)) {
      controller.pause();
      this.res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    if (this.mode === 'relay') this.res.end();
    else if (this.mode === 'retry' && this.proof !== undefined) this.context.resend(this.req, this.res, this.body, this.proof);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.stopWaiting();
    if (error === GAVE_UP || this.gaveUp || this.mode === 'discard') return;
    // Mid-response: the browser must not take a cut body for the whole one.
    if (this.mode === 'relay') return void this.res.destroy();
    this.context.fail(error, this.res);
  }

  private readonly onBusy = (): void => {
    this.busy = undefined;
    this.gaveUp = true;
    this.context.fail(this.context.waitedForConnection() ? 'busy' : 'timeout', this.res);
  };

  private readonly onBrowserClose = (): void => {
    if (this.res.writableFinished) return;
    if (this.controller !== undefined) this.controller.abort(GAVE_UP);
    else {
      this.gaveUp = true;
      this.stopWaiting();
    }
  };

  private stopWaiting(): void {
    if (this.busy === undefined) return;
    clearTimeout(this.busy);
    this.busy = undefined;
  }
}
