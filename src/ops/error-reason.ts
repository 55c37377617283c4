/** Why a network check failed, in one line an operator can act on (shared by the `--check` reports). */

interface ErrorLike {
  message?: unknown;
  code?: unknown;
  cause?: unknown;
  errors?: unknown;
}

/**
 * A readable reason: the error's message and the socket code underneath
 * (fetch and openid-client wrap ECONNREFUSED, ENOTFOUND, ... in causes; a
 * connection to several addresses puts them in an AggregateError's `errors`).
 * Follows `cause` or the first of `errors` up to five deep, skips
 * openid-client's bare "something went wrong", and appends the `E…` code
 * (else the innermost message) unless the first message already says it.
 * Duck-typed, because errors from another realm fail `instanceof Error`.
 */
export function reasonOf(err: unknown): string {
  const chain: ErrorLike[] = [];
  let current: unknown = err;
  while (chain.length < 5 && typeof current === 'object' && current !== null) {
    const link = current as ErrorLike;
    chain.push(link);
    current = Array.isArray(link.errors) && link.errors.length > 0 ? link.errors[0] : link.cause;
  }
  const messages = chain.map((e) => (typeof e.message === 'string' ? e.message : '')).filter((m) => m !== '' && m !== 'something went wrong');
  const codes = chain.map((e) => (typeof e.code === 'string' ? e.code : '')).filter((c) => c !== '');
  const first = messages[0] ?? codes[0] ?? 'unknown error';
  const detail = codes.find((c) => /^E[A-Z_]+$/.test(c)) ?? (messages.length > 1 ? messages[messages.length - 1] : codes[0]);
  return detail && !first.includes(detail) ? `${first} (${detail})` : first;
}
