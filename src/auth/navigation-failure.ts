import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ProblemCode } from '../http/problem-catalogue.ts';
import { type HttpProblem, sendProblem } from '../http/problem.ts';
import { redirectToErrorUrl, sendErrorPage, type ErrorPage } from './error-page.ts';

/** The page's words for the problems a navigation to `/auth/login` or `/auth/callback` can meet before the callback's own checks. */
const PAGES: Partial<Record<ProblemCode, Omit<ErrorPage, 'code'>>> = {
  idp_unavailable: { heading: 'Sign-in is unavailable', detail: 'The identity provider is not reachable right now.' },
  idp_refused_login: {
    heading: 'Sign-in could not start',
    detail: 'The identity provider refused to start a sign-in. Try again later; if it keeps happening, tell the administrators (the gateway log has the reason).',
  },
  rate_limited: { heading: 'Too many sign-in attempts', detail: 'Too many sign-ins were started from this network in a short time.' },
  step_up_not_declared: {
    heading: 'This sign-in link is not valid',
    detail: 'It asks the identity provider for a kind of sign-in this site does not use. Go back and use the link the application gave you.',
  },
};

/**
 * Answers a failed `/auth/login` or `/auth/callback` request. A browser
 * navigation (its `Accept` names `text/html`) gets the gateway's error page,
 * or a redirect to `BFF_ERROR_URL` when one is set: raw JSON would be all the
 * user sees. Any other caller (fetch, curl, monitoring) keeps problem+json.
 * The problem's headers (`Retry-After`) go with either answer.
 */
export function sendNavigationProblem(req: IncomingMessage, res: ServerResponse, problem: HttpProblem, errorUrl: string | undefined): void {
  if (!acceptsHtml(req.headers.accept)) return sendProblem(res, problem);
  if (errorUrl) return redirectToErrorUrl(res, errorUrl, problem.code, problem.headers);
  const page = PAGES[problem.code] ?? { heading: problem.title, detail: problem.message };
  const retryAfter = problem.headers['Retry-After'];
  const detail = retryAfter ? `${page.detail} Try again in ${retryAfter} second${retryAfter === '1' ? '' : 's'}.` : page.detail;
  sendErrorPage(res, problem.status, { ...page, detail, code: problem.code }, problem.headers);
}

/** Whether `Accept` lists `text/html` itself (not just a wildcard) with a non-zero quality. */
export function acceptsHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  return accept.split(',').some((range) => {
    const [type = '', ...params] = range.split(';').map((part) => part.trim().toLowerCase());
    if (type !== 'text/html') return false;
    const q = params.find((param) => param.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}
