import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);

/** Why a sign-in failed, in words a person can act on. Keys are the `code` values. */
export const LOGIN_FAILURES = {
  login_transaction_missing: 'This sign-in was not started in this browser, or its cookie was blocked. Start again.',
  login_transaction_unknown: 'This sign-in has expired (10 minutes) or was already completed. Start again.',
  state_mismatch: 'This sign-in response does not belong to the sign-in this browser started. Start again.',
  idp_error: 'The identity provider refused the sign-in.',
  code_exchange_failed: 'The identity provider did not accept the authorization code (it may have been used already). Start again.',
  invalid_client: "The identity provider refused this application's own credentials, so no one can sign in until the administrators fix the gateway's client configuration.",
  response_invalid: "The identity provider's response failed validation. Start again; if it keeps happening, tell the administrators.",
  idp_unavailable: 'The identity provider is not reachable right now. Try again in a moment.',
  dpop_not_honoured:
    "The identity provider issued tokens that are not bound to this sign-in's key (DPoP), which this gateway requires, so no one can sign in until the administrators enable DPoP for this client at the identity provider.",
  step_up_not_satisfied:
    'The identity provider did not confirm the stronger or more recent sign-in this action needs, so your session was left as it was. Go back and try again; if it keeps happening, tell the administrators.',
} as const;

export type LoginFailure = keyof typeof LOGIN_FAILURES;

/** The callback's failure page: 400 HTML (or a redirect to `BFF_ERROR_URL`), never internals. */
export function sendLoginFailure(res: ServerResponse, code: LoginFailure, errorUrl: string | undefined, idpError?: string): void {
  if (errorUrl) return redirectToErrorUrl(res, errorUrl, code);
  const detail = LOGIN_FAILURES[code] + (idpError ? ` (${idpError})` : '');
  sendErrorPage(res, code === 'idp_unavailable' ? 503 : 400, { heading: 'Sign-in failed', detail, code });
}

/** 302 to `BFF_ERROR_URL` with `?error=<code>`: the operator's own page explains it. */
export function redirectToErrorUrl(res: ServerResponse, errorUrl: string, code: string, headers: Readonly<Record<string, string>> = {}): void {
  const target = new URL(errorUrl, 'http://placeholder.invalid');
  target.searchParams.set('error', code);
  for (const name in headers) res.setHeader(name, headers[name] as string);
  res.statusCode = 302;
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Location', errorUrl.startsWith('/') ? target.pathname + target.search : target.href);
  res.setHeader('Content-Length', 0);
  res.end();
}

export interface ErrorPage {
  heading: string;
  /** What happened and what to do, for a person. */
  detail: string;
  /** The machine-readable code, shown small, for support requests. */
  code: string;
}

/**
 * Every error page of the gateway, in one style: readable on a phone (viewport,
 * one narrow column, large tap targets), light or dark as the device prefers.
 */
export function sendErrorPage(res: ServerResponse, status: number, page: ErrorPage, headers: Readonly<Record<string, string>> = {}): void {
  const body = renderErrorPage(page);
  for (const name in headers) res.setHeader(name, headers[name] as string);
  res.statusCode = status;
  res.setHeader('Cache-Control', 'no-store');
  // The page's own policy, not BFF_CSP: it needs nothing but its inline style, whatever the SPA's policy allows.
  res.setHeader('Content-Security-Policy', PAGE_CSP);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

export function renderErrorPage(page: ErrorPage): string {
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(page.heading)}</title>` +
    `<meta name="viewport" content="width=device-width, initial-scale=1"><style>${STYLE}</style></head>` +
    `<body><main><h1>${escapeHtml(page.heading)}</h1><p>${escapeHtml(page.detail)}</p>` +
    `<p class="actions"><a class="primary" href="/auth/login">Sign in again</a> <a href="/">Home</a></p>` +
    `<p class="code">Error code: <code>${escapeHtml(page.code)}</code></p></main></body></html>`
  );
}

const STYLE = [
  ':root{color-scheme:light dark;--bg:#f3f4f6;--card:#fff;--text:#1f2937;--muted:#6b7280;--accent:#1d4ed8}',
  '@media (prefers-color-scheme:dark){:root{--bg:#111827;--card:#1f2937;--text:#f3f4f6;--muted:#9ca3af;--accent:#60a5fa}}',
  '*{box-sizing:border-box}',
  'body{margin:0;background:var(--bg);color:var(--text);font:1rem/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;overflow-wrap:anywhere}',
  'main{max-width:32rem;margin:12vh auto 0;padding:1.5rem;background:var(--card);border-radius:.75rem;box-shadow:0 1px 3px rgba(0,0,0,.15)}',
  'h1{margin:0 0 .75rem;font-size:1.375rem;line-height:1.3}',
  '.actions{display:flex;flex-wrap:wrap;gap:.75rem;margin:1.25rem 0}',
  '.actions a{display:inline-block;min-height:2.75rem;padding:.6rem 1rem;border-radius:.5rem;color:var(--accent);text-decoration:none;border:1px solid currentColor}',
  '.actions a.primary{background:var(--accent);border-color:var(--accent);color:var(--card)}',
  '.code{margin:0;color:var(--muted);font-size:.875rem}',
  '@media (max-width:30rem){main{margin:0;min-height:100vh;border-radius:0;box-shadow:none}}',
].join('');

/** No script, no external resource: only this exact style may apply (by its hash, so no 'unsafe-inline'). */
const PAGE_CSP = `default-src 'none'; style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;
