/**
 * Just enough of a browser to run an OpenID Connect login over plain HTTP: a cookie jar
 * and a redirect follower. It keeps the browser rules that a BFF depends on (host-only
 * cookies, Path, expiry and deletion, Secure, cookie prefixes, SameSite on cross-site
 * redirects), so that a gateway that works here also works in a real browser.
 */

export type SameSite = 'strict' | 'lax' | 'none';

export type Cookie = {
  name: string;
  value: string;
  /** The request host for a host-only cookie, else the Domain attribute. */
  domain: string;
  hostOnly: boolean;
  path: string;
  /** Epoch milliseconds; undefined for a session cookie. */
  expiresAt: number | undefined;
  secure: boolean;
  httpOnly: boolean;
  /** As sent by the server; undefined when it named none (browsers then treat it as Lax). */
  sameSite: SameSite | undefined;
};

export type CookieContext = {
  /**
   * The request belongs to a navigation that a different site started or redirected
   * through: SameSite=Strict cookies stay home.
   */
  crossSite?: boolean;
  /** With `crossSite`, a POST (form submission): SameSite=Lax cookies stay home as well. */
  unsafeMethod?: boolean;
};

/**
 * Cookies are scoped by host name, not by port (RFC 6265 §8.5, and every browser): that is
 * why the test IdP lives on `localhost` while gateways live on `127.0.0.1`.
 */
export class CookieJar {
  #cookies: Cookie[] = [];

  /** Stores every Set-Cookie header of a response to a request for `requestUrl`. */
  storeFrom(response: Response, requestUrl: string | URL): void {
    for (const header of response.headers.getSetCookie()) this.setCookie(header, requestUrl);
  }

  /** Applies one Set-Cookie header; invalid or foreign-domain cookies are ignored, as a browser would. */
  setCookie(setCookieHeader: string, requestUrl: string | URL): void {
    const url = new URL(requestUrl);
    const host = url.hostname.toLowerCase();
    const [pair = '', ...attributes] = setCookieHeader.split(';');
    const eq = pair.indexOf('=');
    if (eq < 1) return;
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();

    let domain: string | undefined;
    let path: string | undefined;
    let maxAge: number | undefined;
    let expires: number | undefined;
    let secure = false;
    let httpOnly = false;
    let sameSite: SameSite | undefined;
    for (const attribute of attributes) {
      const sep = attribute.indexOf('=');
      const key = (sep === -1 ? attribute : attribute.slice(0, sep)).trim().toLowerCase();
      const val = sep === -1 ? '' : attribute.slice(sep + 1).trim();
      if (key === 'domain' && val !== '') domain = val.replace(/^\./, '').toLowerCase();
      else if (key === 'path') path = val.startsWith('/') ? val : undefined;
      else if (key === 'max-age' && /^-?\d+$/.test(val)) maxAge = Number(val);
      else if (key === 'expires' && !Number.isNaN(Date.parse(val))) expires = Date.parse(val);
      else if (key === 'secure') secure = true;
      else if (key === 'httponly') httpOnly = true;
      else if (key === 'samesite') sameSite = parseSameSite(val);
    }

    if (domain !== undefined && !domainMatches(host, domain)) return;
    if (secure && !isTrustworthy(url)) return;
    if (sameSite === 'none' && !secure) return;
    if ((name.startsWith('__Secure-') || name.startsWith('__Host-')) && !secure) return;
    if (name.startsWith('__Host-') && (domain !== undefined || path !== '/')) return;

    const cookie: Cookie = {
      name,
      value,
      domain: domain ?? host,
      hostOnly: domain === undefined,
      path: path ?? defaultPath(url.pathname),
      // Max-Age wins over Expires (RFC 6265 §5.3 step 3).
      expiresAt: maxAge !== undefined ? Date.now() + maxAge * 1000 : expires,
      secure,
      httpOnly,
      sameSite,
    };
    this.#cookies = this.#cookies.filter((c) => !(c.name === cookie.name && c.domain === cookie.domain && c.path === cookie.path));
    if (!isExpired(cookie)) this.#cookies.push(cookie);
  }

  /** The cookies a browser would send with a request to `url`, most specific path first. */
  cookies(url: string | URL, context: CookieContext = {}): Cookie[] {
    const target = new URL(url);
    const host = target.hostname.toLowerCase();
    this.#cookies = this.#cookies.filter((c) => !isExpired(c));
    return this.#cookies
      .filter((c) => (c.hostOnly ? c.domain === host : domainMatches(host, c.domain)))
      .filter((c) => pathMatches(target.pathname, c.path))
      .filter((c) => !c.secure || isTrustworthy(target))
      .filter((c) => !context.crossSite || sameSiteAllows(c.sameSite, context.unsafeMethod === true))
      .sort((a, b) => b.path.length - a.path.length);
  }

  /** The `Cookie` request header for `url` ('' when there is nothing to send). */
  cookieHeader(url: string | URL, context: CookieContext = {}): string {
    return this.cookies(url, context)
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  get(url: string | URL, name: string): string | undefined {
    return this.cookies(url).find((c) => c.name === name)?.value;
  }

  clear(): void {
    this.#cookies = [];
  }
}

export type FollowOptions = {
  /** Requests to make before giving up with an error (a loop is a bug). Default 20. */
  maxHops?: number;
  /** Returns true for a redirect target that must not be fetched: the result then carries it as `location`. */
  stopAt?: (url: URL) => boolean;
  /** Origins that may be visited; a redirect anywhere else ends the walk. Default: any. */
  origins?: readonly string[];
  /**
   * Origin of the page that started the navigation (where the link was clicked); decides
   * SameSite and Sec-Fetch-Site. Default: the start URL's own origin.
   */
  initiator?: string;
  /**
   * Submit pages that submit their own form by script (oidc-provider's form_post and
   * logout confirmation pages), as a browser does without a click. Default true.
   */
  autoSubmit?: boolean;
  /** Extra request headers, e.g. `accept-language`; they override the defaults. */
  headers?: Record<string, string>;
};

export type FollowResult = {
  /** Status of the last response fetched. */
  status: number;
  /** Its Location (absolute) when the walk stopped at a redirect. */
  location?: string;
  /** The last URL fetched. */
  url: string;
  body: string;
  /** Every URL fetched, in order (a form submission is listed as `POST <url>`). */
  hops: string[];
};

type Navigation = {
  url: URL;
  method: 'GET' | 'POST';
  body?: URLSearchParams;
  /** Origin of the page that caused this navigation. */
  initiator: URL;
  /** Whether any hop so far left the initiator's site (redirect-tainted, Fetch §4.4). */
  crossSite: boolean;
};

/**
 * Navigates to `startUrl` like a browser's top-level navigation and follows redirects with
 * cookies until a response is not a redirect, `stopAt` says so, or the next hop leaves
 * `origins`.
 */
export async function followRedirects(jar: CookieJar, startUrl: string, options: FollowOptions = {}): Promise<FollowResult> {
  const maxHops = options.maxHops ?? 20;
  const autoSubmit = options.autoSubmit ?? true;
  const hops: string[] = [];
  const initiator = new URL(options.initiator ?? startUrl);
  let nav: Navigation = { url: new URL(startUrl), method: 'GET', initiator, crossSite: false };

  for (;;) {
    if (hops.length >= maxHops) {
      throw new Error(`followRedirects: more than ${maxHops} requests:\n  ${hops.join('\n  ')}\n  -> ${nav.url.href}`);
    }
    nav.crossSite ||= siteOf(nav.url) !== siteOf(nav.initiator);
    hops.push(nav.method === 'GET' ? nav.url.href : `${nav.method} ${nav.url.href}`);

    const response = await navigate(jar, nav, options.headers);
    const body = await response.text();
    const url = nav.url.href;
    const locationHeader = response.headers.get('location');

    if (isRedirect(response.status) && locationHeader !== null) {
      const next = new URL(locationHeader, nav.url);
      const stop = { status: response.status, location: next.href, url, body, hops };
      if (options.stopAt?.(next)) return stop;
      if (next.protocol !== 'http:' && next.protocol !== 'https:') return stop;
      if (options.origins && !options.origins.includes(next.origin)) return stop;
      const keepMethod = response.status === 307 || response.status === 308;
      nav = {
        ...nav,
        url: next,
        method: keepMethod ? nav.method : 'GET',
        ...(keepMethod && nav.body ? { body: nav.body } : { body: undefined }),
      };
      continue;
    }

    const form = autoSubmit && response.status === 200 ? autoSubmittedForm(body, nav.url) : undefined;
    if (form === undefined || options.stopAt?.(form.action)) return { status: response.status, url, body, hops };
    // The page's own script submits the form: a new navigation that this page initiates.
    nav = { url: form.action, method: 'POST', body: form.fields, initiator: nav.url, crossSite: false };
  }
}

async function navigate(jar: CookieJar, nav: Navigation, extraHeaders: Record<string, string> | undefined): Promise<Response> {
  // Browsers send Lax cookies cross-site only with top-level GETs.
  const cookie = jar.cookieHeader(nav.url, { crossSite: nav.crossSite, unsafeMethod: nav.method !== 'GET' });
  const sameOrigin = nav.url.origin === nav.initiator.origin;
  const headers: Record<string, string> = {
    accept: 'text/html,application/xhtml+xml,*/*;q=0.8',
    'sec-fetch-mode': 'navigate',
    'sec-fetch-dest': 'document',
    'sec-fetch-site': nav.crossSite ? 'cross-site' : sameOrigin ? 'same-origin' : 'same-site',
    ...(nav.method === 'POST' ? { origin: nav.initiator.origin } : {}),
    ...extraHeaders,
    ...(cookie ? { cookie } : {}),
  };
  const response = await fetch(nav.url, {
    method: nav.method,
    redirect: 'manual',
    headers,
    ...(nav.body ? { body: nav.body } : {}),
  });
  jar.storeFrom(response, nav.url);
  return response;
}

/** The first form of a page whose script submits it on load, with its hidden fields. */
function autoSubmittedForm(html: string, pageUrl: URL): { action: URL; fields: URLSearchParams } | undefined {
  if (!/<script[^>]*>[^<]*\.submit\(\)/i.test(html)) return undefined;
  const form = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(html);
  if (!form) return undefined;
  const [, formAttributes = '', inner = ''] = form;
  if ((attribute(formAttributes, 'method') ?? 'get').toLowerCase() !== 'post') return undefined;
  const fields = new URLSearchParams();
  for (const input of inner.matchAll(/<input\b([^>]*)>/gi)) {
    const name = attribute(input[1] ?? '', 'name');
    if (name !== undefined) fields.append(name, attribute(input[1] ?? '', 'value') ?? '');
  }
  return { action: new URL(attribute(formAttributes, 'action') ?? pageUrl.href, pageUrl), fields };
}

function attribute(attributes: string, name: string): string | undefined {
  const match = new RegExp(`\\b${name}\\s*=\\s*"([^"]*)"`, 'i').exec(attributes);
  return match?.[1] === undefined ? undefined : decodeHtml(match[1]);
}

function decodeHtml(text: string): string {
  return text
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

export type LoginResult = {
  jar: CookieJar;
  /** What the SPA's same-origin fetches would send to the gateway. */
  cookieHeader: string;
  /** Where the gateway sent the browser after the callback (the returnTo, absolute). */
  finalUrl: string;
};

/**
 * Runs a whole login: gateway `/auth/login`, the IdP (whose interaction logs in
 * automatically), the gateway callback, until the gateway redirects to a page of its own
 * outside `/auth/`.
 */
export async function loginThroughGateway(gatewayUrl: string, jar: CookieJar = new CookieJar(), opts: { returnTo?: string } = {}): Promise<LoginResult> {
  const gateway = new URL(gatewayUrl);
  const start = new URL('/auth/login', gateway);
  start.searchParams.set('returnTo', opts.returnTo ?? '/');

  const result = await followRedirects(jar, start.href, {
    stopAt: (url) => url.origin === gateway.origin && !url.pathname.startsWith('/auth/'),
  });
  const finalUrl = result.location === undefined ? undefined : new URL(result.location);
  if (finalUrl === undefined || finalUrl.origin !== gateway.origin || finalUrl.pathname.startsWith('/auth/')) {
    throw new Error(
      `login did not end on a gateway page: HTTP ${result.status} at ${result.url}` +
        `${result.location ? ` -> ${result.location}` : ''}\nhops:\n  ${result.hops.join('\n  ')}\nbody: ${result.body.slice(0, 500)}`,
    );
  }
  return { jar, cookieHeader: jar.cookieHeader(gateway), finalUrl: finalUrl.href };
}

/**
 * A login into any relying party that sends the browser to the IdP and takes it back on
 * `callbackPath` (express-openid-connect's `/callback`, mod_auth_openidc's vanity redirect
 * URI, the gateway's `/auth/callback`): starts at `loginUrl` and stops at the first redirect
 * back into the app after the callback, whatever page that is.
 */
export async function loginThroughApp(loginUrl: string, callbackPath: string, jar: CookieJar = new CookieJar()): Promise<LoginResult> {
  const app = new URL(loginUrl);
  let calledBack = false;
  const result = await followRedirects(jar, app.href, {
    stopAt: (url) => {
      if (url.origin !== app.origin) return false;
      if (url.pathname === callbackPath) {
        calledBack = true;
        return false;
      }
      return calledBack;
    },
  });
  if (!calledBack || result.location === undefined || new URL(result.location).origin !== app.origin) {
    throw new Error(
      `login did not come back from ${callbackPath}: HTTP ${result.status} at ${result.url}` +
        `${result.location ? ` -> ${result.location}` : ''}\nhops:\n  ${result.hops.join('\n  ')}\nbody: ${result.body.slice(0, 500)}`,
    );
  }
  return { jar, cookieHeader: jar.cookieHeader(new URL('/', app)), finalUrl: result.location };
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

function parseSameSite(value: string): SameSite | undefined {
  const v = value.toLowerCase();
  return v === 'strict' || v === 'lax' || v === 'none' ? v : undefined;
}

/**
 * For a cross-site request. A cookie without SameSite is sent, as Firefox and Safari do
 * (Chrome treats it as Lax, but still sends it with a POST in its first two minutes).
 */
function sameSiteAllows(sameSite: SameSite | undefined, unsafeMethod: boolean): boolean {
  if (sameSite === 'strict') return false;
  if (sameSite === 'lax') return !unsafeMethod;
  return true;
}

function isExpired(cookie: Cookie): boolean {
  return cookie.expiresAt !== undefined && cookie.expiresAt <= Date.now();
}

/** RFC 6265 §5.1.3; an IP address matches only itself. */
function domainMatches(host: string, domain: string): boolean {
  if (host === domain) return true;
  return host.endsWith(`.${domain}`) && !isIpAddress(host);
}

/** RFC 6265 §5.1.4 */
function defaultPath(requestPath: string): string {
  if (!requestPath.startsWith('/')) return '/';
  const lastSlash = requestPath.lastIndexOf('/');
  return lastSlash <= 0 ? '/' : requestPath.slice(0, lastSlash);
}

/** RFC 6265 §5.1.4: `/auth` matches `/auth` and `/auth/x`, not `/authx`. */
function pathMatches(requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/';
}

/** Browsers treat loopback like https for Secure cookies, which is what lets the tests run on plain http. */
function isTrustworthy(url: URL): boolean {
  const host = url.hostname;
  return url.protocol === 'https:' || host === 'localhost' || host === '127.0.0.1' || host === '[::1]';
}

function isIpAddress(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.startsWith('[');
}

/** Scheme and host: test servers have no registrable domain, so each host is its own site. */
function siteOf(url: URL): string {
  return `${url.protocol}//${url.hostname}`;
}
