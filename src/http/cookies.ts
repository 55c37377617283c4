import type { IncomingMessage } from 'node:http';

/** Reads one cookie without parsing the whole header into an object. */
export function readCookie(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    const raw = part.slice(eq + 1).trim();
    try {
      return decodeURIComponent(raw.startsWith('"') && raw.endsWith('"') ? raw.slice(1, -1) : raw);
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** What every cookie of the gateway's carries: script cannot read it, and it is sent on every path of this host only (no Domain). */
interface CookieAttributes {
  httpOnly: true;
  secure: boolean;
  sameSite: 'strict' | 'lax';
  path: '/';
}

/** The session cookie's attributes, for setting and for clearing it (a clear must match what was set). */
export function sessionCookieAttributes(config: { secure: boolean; sameSite: 'strict' | 'lax' }): CookieAttributes {
  return { httpOnly: true, secure: config.secure, sameSite: config.sameSite, path: '/' };
}

/** The login-transaction cookie's: `Lax`, because it must come back on the IdP's cross-site redirect to the callback. */
export function transactionCookieAttributes(config: { secure: boolean }): CookieAttributes {
  return { httpOnly: true, secure: config.secure, sameSite: 'lax', path: '/' };
}
