import type { IncomingMessage } from 'node:http';
import { problems } from './problem-catalogue.ts';
import type { HttpProblem } from './problem.ts';

/**
 * The cross-site request checks DESIGN.md asks for. A custom header cannot be
 * sent cross-site without a CORS preflight, which the gateway never grants;
 * `Origin` and `Sec-Fetch-Site`, when the browser sends them, refuse the rest.
 * Returns the problem to answer with, or undefined when the request may pass.
 */
export function crossSiteProblem(req: IncomingMessage, publicOrigin: string): HttpProblem | undefined {
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== publicOrigin) return problems.crossSite();
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return problems.crossSite();
  return undefined;
}

export function csrfProblem(req: IncomingMessage, publicOrigin: string, header: string): HttpProblem | undefined {
  if (req.headers[header] !== '1') return problems.csrfMissing(header);
  return crossSiteProblem(req, publicOrigin);
}
