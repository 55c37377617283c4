const MAX_PATH_LENGTH = 4096;
const UNRESERVED = /[A-Za-z0-9\-._~]/;
/** After canonicalisation these may only appear encoded, and encoded they are ambiguous: `/`, `\`, NUL, controls, or a double-encoded one of those or of `.`. */
// eslint-disable-next-line no-control-regex -- control characters are what this refuses
const AMBIGUOUS = /%(2F|5C|00|0[1-9A-F]|1[0-9A-F]|7F)|%25(2E|2F|5C|00)|[\u0000-\u001f\u007f\\]/i;

export type NormalisedPath =
  | {
      ok: true;
      /** Canonical, dot segments resolved: what is matched and forwarded. */
      path: string;
      /** Canonical but with `..` kept as a segment: the route the request names before any climbing. */
      lexical: string;
    }
  | { ok: false; reason: string };

/**
 * Normalises a raw request path once, before route matching and rewriting, so
 * that what the gateway authorises is exactly what the upstream receives:
 * percent-encoded unreserved characters are decoded (`%61` → `a`, `%2e` → `.`),
 * other escapes are upper-cased, duplicate slashes collapse and dot segments
 * are resolved. Malformed escapes, encoded or raw slashes and backslashes
 * inside a segment, NUL and control characters, and paths that climb above
 * the root are refused.
 */
export function normalisePath(rawPath: string): NormalisedPath {
  if (rawPath.length > MAX_PATH_LENGTH) return { ok: false, reason: 'path too long' };
  if (!rawPath.startsWith('/')) return { ok: false, reason: 'path must start with /' };
  const segments: string[] = [];
  const lexical: string[] = [];
  const raw = rawPath.split('/');
  let trailingSlash = false;
  for (let i = 1; i < raw.length; i++) {
    const segment = canonicalSegment(raw[i] as string);
    if (segment === undefined) return { ok: false, reason: 'malformed percent-encoding' };
    if (AMBIGUOUS.test(segment)) return { ok: false, reason: 'encoded slash, backslash or control character' };
    // Servlet containers drop `;params` before resolving dots, so `..;` climbs there even though it is no dot segment here.
    const semicolon = segment.indexOf(';');
    if (semicolon >= 0 && (segment.slice(0, semicolon) === '.' || segment.slice(0, semicolon) === '..')) {
      return { ok: false, reason: 'dot segment with parameters' };
    }
    // A final empty, `.` or `..` segment names a directory: keep the trailing slash (RFC 3986 §5.2.4).
    if (i === raw.length - 1) trailingSlash = segment === '' || segment === '.' || segment === '..';
    if (segment === '' || segment === '.') continue;
    lexical.push(segment);
    if (segment === '..') {
      if (segments.length === 0) return { ok: false, reason: 'path climbs above the root' };
      segments.pop();
      continue;
    }
    segments.push(segment);
  }
  const path = '/' + segments.join('/');
  return { ok: true, path: trailingSlash && segments.length > 0 ? path + '/' : path, lexical: '/' + lexical.join('/') };
}

function canonicalSegment(segment: string): string | undefined {
  if (!segment.includes('%')) return segment;
  let out = '';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i] as string;
    if (c !== '%') {
      out += c;
      continue;
    }
    const hex = segment.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return undefined;
    const decoded = String.fromCharCode(parseInt(hex, 16));
    out += UNRESERVED.test(decoded) ? decoded : `%${hex.toUpperCase()}`;
    i += 2;
  }
  return out;
}
