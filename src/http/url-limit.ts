import { problems } from './problem-catalogue.ts';
import type { HttpProblem } from './problem.ts';

/**
 * 414 for a URL longer than `maxLength`. Node bounds the request line only
 * together with the headers (431); this limit is tighter, because nothing the
 * gateway serves needs a long URL and upstreams and their logs may choke on one.
 */
export function urlLengthProblem(url: string, maxLength: number): HttpProblem | undefined {
  if (url.length <= maxLength) return undefined;
  return problems.urlTooLong(maxLength);
}
