/**
 * Accepts only a same-origin relative path for the post-login redirect.
 * Everything else (absolute URLs, scheme-relative `//host`, backslash tricks
 * that browsers treat as `//`, control characters, encoded variants of those)
 * falls back to `/`, so the login endpoint can never be used as an open redirect.
 */
export function safeReturnTo(value: unknown, origin: string): string {
  if (typeof value !== 'string' || value === '' || value.length > 2048) return '/';
  if (!value.startsWith('/')) return '/';
  // Decode repeatedly so that `%2F%2Fevil` or `%252F%252Fevil` are judged as what they could become.
  let decoded = value;
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
  for (const candidate of [value, decoded]) {
    if (/[\u0000-\u001f\u007f\\]/.test(candidate)) return '/';
    if (candidate.startsWith('//') || !candidate.startsWith('/')) return '/';
  }
  let url: URL;
  try {
    url = new URL(value, origin);
  } catch {
    return '/';
  }
  if (url.origin !== origin) return '/';
  return url.pathname + url.search + url.hash;
}
