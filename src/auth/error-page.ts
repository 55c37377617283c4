import type { Response } from 'express';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);

/** Why a sign-in failed, in words a person can act on. Keys are the `code` values. */
export const LOGIN_FAILURES = {
  login_transaction_missing: 'This sign-in was not started in this browser, or its cookie was blocked. Start again.',
  login_transaction_unknown: 'This sign-in has expired (10 minutes) or was already completed. Start again.',
  state_mismatch: 'This sign-in response does not belong to the sign-in this browser started. Start again.',
  idp_error: 'The identity provider refused the sign-in.',
  code_exchange_failed: 'The identity provider did not accept the authorization code (it may have been used already). Start again.',
  response_invalid: 'The identity provider\'s response failed validation. Start again; if it keeps happening, tell the administrators.',
  idp_unavailable: 'The identity provider is not reachable right now. Try again in a moment.',
} as const;

export type LoginFailure = keyof typeof LOGIN_FAILURES;

/** The callback's failure page: 400 HTML (or a redirect to `BFF_ERROR_URL`), never internals. */
export function sendLoginFailure(res: Response, code: LoginFailure, errorUrl: string | undefined, idpError?: string): void {
  res.setHeader('Cache-Control', 'no-store');
  if (errorUrl) {
    const target = new URL(errorUrl, 'http://placeholder.invalid');
    target.searchParams.set('error', code);
    res.redirect(302, errorUrl.startsWith('/') ? target.pathname + target.search : target.href);
    return;
  }
  const detail = LOGIN_FAILURES[code] + (idpError ? ` (${idpError})` : '');
  res
    .status(code === 'idp_unavailable' ? 503 : 400)
    .type('html')
    .send(
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign-in failed</title>` +
        `<meta name="viewport" content="width=device-width, initial-scale=1"></head>` +
        // No inline styles: the page is served under the gateway's strict Content-Security-Policy.
        `<body>` +
        `<h1>Sign-in failed</h1><p>${escapeHtml(detail)}</p><p><small>Error code: ${escapeHtml(code)}</small></p>` +
        `<p><a href="/auth/login">Sign in again</a> · <a href="/">Home</a></p></body></html>`,
    );
}
