/**
 * Accepts only a same-origin relative path for the post-login redirect.
 * Everything else (absolute URLs, scheme-relative `//host`, backslash tricks
 * that browsers treat as `//`, control characters that browsers strip, dot
 * segments that collapse into `//`, encoded variants of those) falls back to
 * `/`, so the login endpoint can never be used as an open redirect.
 */
export function safeReturnTo(value: unknown, origin: string): string {
  if (typeof value !== 'string' || value === '' || value.length > 2048) return '/';
  // Browsers drop tab and newline anywhere in a URL, so `/\t/evil` is `//evil` to them.
  // eslint-disable-next-line no-control-regex -- control characters are what this refuses
  if (/[\u0000-\u001f\u007f]/.test(value)) return '/';
  const pathEnd = value.search(/[?#]/);
  const path = pathEnd < 0 ? value : value.slice(0, pathEnd);
  // Judge the path as whatever it could become after (repeated) decoding: `%2F%2Fevil`, `%252F%252Fevil`.
  let decoded = path;
  for (let i = 0; i < 3; i++) {
    let next: string;
    try {
      next = decodeURIComponent(decoded);
    } catch {
      return '/';
    }
    if (next === decoded) break;
    decoded = next;
  }
  for (const candidate of [path, decoded]) {
    // eslint-disable-next-line no-control-regex -- control characters are what this refuses
    if (!candidate.startsWith('/') || candidate.startsWith('//') || /[\u0000-\u001f\u007f\\]/.test(candidate)) return '/';
  }
  let url: URL;
  try {
    url = new URL(value, origin);
  } catch {
    return '/';
  }
  // Dot segments resolve after the checks above: `/.//evil` becomes `//evil`.
  if (url.origin !== origin || url.pathname.startsWith('//')) return '/';
  return url.pathname + url.search + url.hash;
}
