import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Locator, type Page, type Response } from 'playwright-core';
import { startDemoApi } from '../../demo/api.ts';
import { DEMO_API_CLIENT_ID, DEMO_API_CLIENT_SECRET, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, startDemoIdp, type DemoIdp } from '../../demo/idp.ts';
import { getFreePort } from '../support/ports.ts';
import { startRedis } from '../support/redis.ts';
import { recordBodies, type BodyRecorder } from './body-recorder.ts';
import { startCountingProxy, type CountingProxy } from './counting-proxy.ts';
import { startEvilSite, type EvilOutcome, type EvilSite } from './evil-site.ts';
import { startGatewayProcess, type GatewayProcess } from './gateway-process.ts';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SPA_DIR = fileURLToPath(new URL('../../demo/spa/', import.meta.url));
const SCREENSHOT_DIR = fileURLToPath(new URL('../../test-results/e2e/', import.meta.url));
// Short enough to wait out in a test, long enough that login and the first API call
// happen well before the gateway considers the token due (TTL minus the skew).
const ACCESS_TOKEN_TTL_SEC = 12;
const REFRESH_SKEW_SEC = 2;
const USER = 'ada';
const USER_NAME = 'Ada Demo';

/** One token endpoint response, as the IdP sent it to the gateway. */
type Issued = { at: number; grantType: string; expiresIn: number; accessToken?: string; refreshToken?: string; idToken?: string };

/** One response the browser received, for the token-leak scan. */
type Received = {
  method: string;
  url: string;
  status: number;
  headers: string;
  /** undefined when Chromium never delivered it in full (see settle()). */
  body: string | undefined;
  bodyProblem: string;
  cookieSent: string;
  /** Received by the SPA's tab (else by an attacker's page). */
  fromSpa: boolean;
};

/** A response as it arrives; `full` resolves once its body is in (or known to be unavailable). */
type Capture = { now: Received; full: Promise<Received> };

type ApiAnswer = { message: string; path: string; tokenClaims: { active: boolean; sub: string; client_id: string; exp: number; iat: number }; receivedCookieHeader: boolean };

describe('a real browser: the demo SPA behind the gateway (child process), the demo IdP, Redis', () => {
  const cleanups: Array<() => Promise<void>> = [];
  const issued: Issued[] = [];
  const received: Capture[] = [];
  const pageErrors: string[] = [];
  let shots = 0;
  let firstApiExp = 0;

  let idp: DemoIdp;
  let gatewayUrl: string;
  let gateway: GatewayProcess;
  let upstream: CountingProxy;
  let evilSites: EvilSite[];
  let browser: Browser;
  let context: BrowserContext;
  let spa: Page;
  let recorder: BodyRecorder;

  beforeAll(async () => {
    rmSync(SCREENSHOT_DIR, { recursive: true, force: true });
    mkdirSync(SCREENSHOT_DIR, { recursive: true });

    const redis = await startRedis();
    cleanups.push(() => redis.stop());

    const [port, adminPort, idpPort, apiPort] = await Promise.all([getFreePort(), getFreePort(), getFreePort(), getFreePort()]);
    gatewayUrl = `http://127.0.0.1:${port}`;
    idp = await startDemoIdp({ port: idpPort, gatewayUrl, accessTokenTtl: ACCESS_TOKEN_TTL_SEC });
    cleanups.push(() => idp.close());
    idp.provider.on('grant.success', (ctx) => {
      const body = ctx.body as Record<string, unknown> | undefined;
      if (body === undefined || typeof body !== 'object') return;
      issued.push({
        at: Date.now(),
        grantType: String(ctx.oidc.params?.grant_type ?? ''),
        expiresIn: Number(body.expires_in),
        ...(typeof body.access_token === 'string' ? { accessToken: body.access_token } : {}),
        ...(typeof body.refresh_token === 'string' ? { refreshToken: body.refresh_token } : {}),
        ...(typeof body.id_token === 'string' ? { idToken: body.id_token } : {}),
      });
    });

    const api = await startDemoApi({ port: apiPort, introspectionUrl: `${idp.issuer}/token/introspection`, clientId: DEMO_API_CLIENT_ID, clientSecret: DEMO_API_CLIENT_SECRET });
    cleanups.push(() => api.close());
    upstream = await startCountingProxy(api.url);
    cleanups.push(() => upstream.close());

    const configDir = mkdtempSync(join(tmpdir(), 'bff-e2e-'));
    cleanups.push(async () => rmSync(configDir, { recursive: true, force: true }));
    const routesFile = join(configDir, 'routes.json');
    writeFileSync(routesFile, JSON.stringify({ routes: [{ prefix: '/api/echo', target: upstream.url, token: 'user' }] }));

    gateway = await startGatewayProcess({
      adminPort,
      env: {
        BFF_PUBLIC_URL: gatewayUrl,
        BFF_PORT: String(port),
        BFF_ADMIN_PORT: String(adminPort),
        BFF_ISSUER_URL: idp.issuer,
        BFF_ALLOW_INSECURE_ISSUER: 'true',
        BFF_CLIENT_ID: DEMO_CLIENT_ID,
        BFF_CLIENT_SECRET: DEMO_CLIENT_SECRET,
        BFF_SESSION_SECRETS: randomBytes(48).toString('base64'),
        BFF_ROUTES_FILE: routesFile,
        BFF_STATIC_DIR: SPA_DIR,
        BFF_REDIS_URL: redis.url,
        BFF_REFRESH_SKEW: String(REFRESH_SKEW_SEC),
        BFF_LOG_LEVEL: 'warn',
      },
    });
    cleanups.push(async () => {
      // DESIGN.md: SIGTERM is a graceful shutdown with exit code 0.
      const end = await gateway.stop();
      if (end.code !== 0) throw new Error(`the gateway ended with ${end.code ?? end.signal} on SIGTERM:\n${gateway.output()}`);
    });

    // Same site as the gateway but another origin (cookies go along, SameSite does not
    // help), and another site altogether (127.0.0.2 is loopback too, but a different host).
    evilSites = [await startEvilSite('127.0.0.1', gatewayUrl), await startEvilSite('127.0.0.2', gatewayUrl)];
    for (const site of evilSites) cleanups.push(() => site.close());

    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    cleanups.push(() => browser.close());
    // A fresh profile. No context.route(): with interception on, Playwright answers CORS
    // preflights itself with allow-everything headers, which would fake the attack below.
    context = await browser.newContext({ viewport: { width: 1000, height: 800 } });
    cleanups.push(() => context.close());
    context.on('response', (response) => received.push(capture(response, spa)));
    spa = await context.newPage();
    spa.on('pageerror', (err) => pageErrors.push(err.message));
    recorder = await recordBodies(context, spa, `${gatewayUrl}/`);
    cleanups.push(() => recorder.stop());
  }, 60_000);

  afterAll(async () => {
    const failures: unknown[] = [];
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (err) {
        failures.push(err);
      }
    }
    if (failures.length > 0) throw new AggregateError(failures, 'e2e cleanup failed');
  });

  async function shot(page: Page, name: string): Promise<void> {
    shots += 1;
    await page.screenshot({ path: join(SCREENSHOT_DIR, `${String(shots).padStart(2, '0')}-${name}.png`), fullPage: true });
  }

  async function clickCallApi(): Promise<{ status: number; answer: ApiAnswer }> {
    const [response] = await Promise.all([spa.waitForResponse((r) => r.url() === `${gatewayUrl}/api/echo/hello`), spa.click('#call-api')]);
    // The SPA disables the button while the call runs and re-enables it once it has rendered the answer.
    await spa.locator('#call-api:enabled').waitFor();
    // What the SPA rendered, not what the network said: that is what the user sees.
    const status = await spa.locator('#api-status').textContent();
    expect(status).toBe(`HTTP ${response.status()}`);
    const rendered = await spa.locator('#api-result').textContent();
    return { status: response.status(), answer: JSON.parse(rendered ?? '') as ApiAnswer };
  }

  function gatewayCookies(): Promise<Array<{ name: string; value: string; httpOnly: boolean; sameSite: string }>> {
    return context.cookies(gatewayUrl);
  }

  test('logs in from the SPA button through the IdP login form and shows the user name', async () => {
    await spa.goto(`${gatewayUrl}/`);
    expect(await textOnceShown(spa.locator('#status'), 'Not signed in.')).toBe('Not signed in.');
    await shot(spa, 'spa-signed-out');

    await spa.click('#login');
    await spa.waitForURL((url) => url.origin === idp.issuer && url.pathname.startsWith('/interaction/'));
    await spa.locator('input[name="login"]').pressSequentially(USER);
    await spa.locator('input[name="password"]').pressSequentially('any password will do');
    await shot(spa, 'idp-login-form');
    await spa.click('button:has-text("Sign-in")');

    // The demo IdP asks for consent on a user's first login.
    await spa.locator('button:has-text("Continue")').waitFor();
    await shot(spa, 'idp-consent');
    await spa.click('button:has-text("Continue")');

    await spa.waitForURL(`${gatewayUrl}/`);
    expect(await textOnceShown(spa.locator('#status'), 'Signed in as')).toMatch(new RegExp(`^Signed in as ${USER_NAME}\\. Session ends in `));
    expect(await spa.locator('#claims').textContent()).toContain(`${USER}@example.com`);
    await shot(spa, 'spa-signed-in');

    const codeGrants = issued.filter((t) => t.grantType === 'authorization_code');
    expect(codeGrants).toHaveLength(1);
    // The IdP honoured the short lifetime the refresh step below relies on.
    expect(codeGrants[0]?.expiresIn).toBe(ACCESS_TOKEN_TTL_SEC);
  });

  test("the page's JavaScript sees no cookie and no token anywhere", async () => {
    // There is a session cookie (else an empty document.cookie would prove nothing), and it is HttpOnly.
    const cookies = await gatewayCookies();
    expect(cookies.map((c) => ({ name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite }))).toEqual([{ name: 'bff', httpOnly: true, sameSite: 'Strict' }]);

    const visible = await spa.evaluate(() => {
      // Runs in the page; the project's TypeScript lib has no DOM types, so name what is used.
      const page = globalThis as unknown as { document: { cookie: string; documentElement: { outerHTML: string } }; localStorage: Storage; sessionStorage: Storage };
      const dump = (storage: Storage): string[] => Array.from({ length: storage.length }, (_, i) => `${storage.key(i)}=${storage.getItem(storage.key(i) ?? '')}`);
      return { cookie: page.document.cookie, local: dump(page.localStorage), session: dump(page.sessionStorage), html: page.document.documentElement.outerHTML };
    });
    expect(visible.cookie).toBe('');
    expect(visible.local).toEqual([]);
    expect(visible.session).toEqual([]);

    const tokens = issuedTokens();
    expect([...new Set(tokens.map((t) => t.kind))].sort()).toEqual(['access_token', 'id_token', 'refresh_token']);
    const responses = await settle(received);
    // The scan saw what the SPA lives on: its page, its script and the user's claims.
    for (const path of ['/', '/app.js', '/auth/user']) {
      expect(responses.filter((r) => r.url === `${gatewayUrl}${path}` && r.status === 200 && (r.body ?? '').length > 0).length).toBeGreaterThan(0);
    }
    expect(blindSpots(responses, recorder, gatewayUrl)).toEqual([]);
    expect(leaks(tokens, responses, recorder)).toEqual([]);
    expect(tokens.filter((t) => visible.html.includes(t.value)).map((t) => t.kind)).toEqual([]);
  });

  test('the SPA calls the API and renders the upstream answer for the signed-in user', async () => {
    const upstreamBefore = upstream.seen.length;
    const { status, answer } = await clickCallApi();
    await shot(spa, 'api-answer');

    expect(status).toBe(200);
    expect(answer.message).toBe('Hello from the sample API');
    expect(answer.path).toBe('/api/echo/hello');
    // The upstream checked the bearer the gateway injected: this user's token, issued to the gateway.
    expect(answer.tokenClaims).toMatchObject({ active: true, sub: USER, client_id: DEMO_CLIENT_ID });
    expect(answer.tokenClaims.exp - answer.tokenClaims.iat).toBe(ACCESS_TOKEN_TTL_SEC);
    expect(answer.receivedCookieHeader).toBe(false);
    expect(upstream.seen.slice(upstreamBefore)).toEqual([{ method: 'GET', url: '/api/echo/hello', bearer: true }]);
    // Still the token from the login: nothing was refreshed yet, so the next step is meaningful.
    expect(issued.filter((t) => t.grantType === 'refresh_token')).toHaveLength(0);
    firstApiExp = answer.tokenClaims.exp;
  });

  test('the page explains what just happened, and fits a 375 px phone screen without horizontal scrolling', async () => {
    const explained = await textOnceShown(spa.locator('#explained'), 'What just happened');
    expect(explained).toContain('x-csrf: 1');
    expect(explained).toContain('Authorization: Bearer');
    expect(await spa.locator('#page-cookies').textContent()).toBe('""');
    expect(await spa.locator('#api-saw-cookie').textContent()).toBe('no');
    expect(await spa.locator('#token-facts').textContent()).toMatch(new RegExp(`^active, issued to ${DEMO_CLIENT_ID} for ${USER}, valid for `));
    await spa.setViewportSize({ width: 375, height: 800 });
    try {
      await shot(spa, 'phone-375');
      const widths = await spa.evaluate(() => {
        // Runs in the page; the project's TypeScript lib has no DOM types.
        const root = (globalThis as unknown as { document: { documentElement: { scrollWidth: number; clientWidth: number } } }).document.documentElement;
        return { scroll: root.scrollWidth, client: root.clientWidth };
      });
      expect(widths.client).toBe(375);
      expect(widths.scroll).toBeLessThanOrEqual(widths.client);
    } finally {
      await spa.setViewportSize({ width: 1000, height: 800 });
    }
  });

  test('after the access token has expired, calling again still works because the gateway refreshed it', async () => {
    const login = issued.find((t) => t.grantType === 'authorization_code');
    if (login?.accessToken === undefined) throw new Error('no access token from the login');
    await delay(Math.max(0, login.at + login.expiresIn * 1000 - Date.now()) + 1_500);
    // Without a refresh the next call would fail: the IdP itself now calls the old token dead.
    expect((await introspect(login.accessToken)).active).toBe(false);

    const callStartedSec = Math.floor(Date.now() / 1000);
    const { status, answer } = await clickCallApi();
    await shot(spa, 'api-answer-after-refresh');

    expect(status).toBe(200);
    expect(answer.tokenClaims).toMatchObject({ active: true, sub: USER, client_id: DEMO_CLIENT_ID });
    const refreshes = issued.filter((t) => t.grantType === 'refresh_token');
    expect(refreshes).toHaveLength(1);
    expect(answer.tokenClaims.exp).toBeGreaterThan(firstApiExp);
    // The upstream's token was minted by that refresh: issued during this call, not before it. Compared in
    // whole seconds on both ends because the IdP's iat and our record of the response can straddle a second.
    expect(answer.tokenClaims.iat).toBeGreaterThanOrEqual(callStartedSec);
    expect(answer.tokenClaims.iat).toBeLessThanOrEqual(Math.floor((refreshes[0]?.at ?? 0) / 1000));
    expect(answer.tokenClaims.exp - answer.tokenClaims.iat).toBe(ACCESS_TOKEN_TTL_SEC);
  });

  test.each([
    ['same-site-other-port', 0],
    ['cross-site', 1],
  ])('a page on another origin (%s) can neither use the API nor log the user out', async (label, index) => {
    const site = evilSites[index];
    if (site === undefined) throw new Error(`no evil site ${index}`);
    const [cookieBefore] = await gatewayCookies();
    const upstreamBefore = upstream.seen.length;
    const receivedBefore = received.length;

    // A tab in the victim's own browser context: a context of its own would have an empty
    // cookie jar, and the attack would fail for want of a session rather than by defence.
    const evil = await context.newPage();
    try {
      await evil.goto(`${site.origin}/`);
      await evil.locator('body[data-done="true"]').waitFor();
      const outcomes = JSON.parse((await evil.locator('#results').textContent()) ?? '') as EvilOutcome[];
      await shot(evil, `evil-${label}-fetch`);
      expect(outcomes).toEqual([
        // The browser withholds the answer: the gateway grants no CORS.
        { name: 'cors-with-credentials', outcome: 'rejected', status: 0, detail: 'TypeError: Failed to fetch' },
        // Sent, but the page can read nothing of it.
        { name: 'no-cors-with-credentials', outcome: 'opaque', status: 0, detail: '' },
        // The CSRF header needs a preflight, which the gateway never grants.
        { name: 'cors-with-csrf-header', outcome: 'rejected', status: 0, detail: 'TypeError: Failed to fetch' },
      ]);

      const [post] = await Promise.all([evil.waitForResponse((r) => r.url() === `${gatewayUrl}/auth/logout` && r.request().method() === 'POST'), evil.click('#claim')]);
      await evil.waitForLoadState();
      await shot(evil, `evil-${label}-form-post`);
      expect(post.status()).toBe(403);
      expect(post.headers()['content-type']).toContain('application/problem+json');

      // The same attempts as the browser saw them: they did reach the gateway, which refused each one.
      const attempts = (await settle(received.slice(receivedBefore))).filter((r) => !r.fromSpa && r.url.startsWith(`${gatewayUrl}/`));
      expect(attempts.filter((r) => r.status !== 403)).toEqual([]);
      expect(attempts.some((r) => r.method === 'GET' && r.url === `${gatewayUrl}/api/echo/x`)).toBe(true);
      const posts = attempts.filter((r) => r.method === 'POST');
      expect(posts).toHaveLength(1);
      // Same site, SameSite=Strict lets the cookie go along and only the CSRF check stands in
      // the way; from another site the cookie stays home.
      expect(posts[0]?.cookieSent.includes('bff=')).toBe(label === 'same-site-other-port');
    } finally {
      await evil.close();
    }
    // Nothing got past the gateway.
    expect(upstream.seen.slice(upstreamBefore)).toEqual([]);

    // The session survived: same cookie, the SPA still knows the user, the API still answers.
    const [cookieAfter] = await gatewayCookies();
    expect(cookieAfter?.value).toBe(cookieBefore?.value);
    await spa.reload();
    expect(await textOnceShown(spa.locator('#status'), 'Signed in as')).toContain(`Signed in as ${USER_NAME}.`);
    const { status, answer } = await clickCallApi();
    expect(status).toBe(200);
    expect(answer.tokenClaims.sub).toBe(USER);
    await shot(spa, `spa-after-${label}-attack`);
  });

  test('logging out goes through the IdP end-session page, and the old cookie is worthless afterwards', async () => {
    const [cookie] = await gatewayCookies();
    if (cookie === undefined) throw new Error('no session cookie before logout');
    // The raw replay works while the session lives, so the 401 below is the logout's doing.
    expect(await replay(cookie, '/api/echo/hello')).toBe(200);
    const refreshToken = issued.findLast((t) => t.refreshToken !== undefined)?.refreshToken;
    if (refreshToken === undefined) throw new Error('the IdP issued no refresh token');
    expect((await introspect(refreshToken)).active).toBe(true);

    await spa.click('#logout');
    await spa.waitForURL((url) => url.origin === idp.issuer && url.pathname.startsWith('/session/end'));
    await spa.locator('button[name="logout"]').waitFor();
    await shot(spa, 'idp-end-session');
    await spa.click('button[name="logout"]');

    await spa.waitForURL(`${gatewayUrl}/`);
    expect(await textOnceShown(spa.locator('#status'), 'Not signed in.')).toBe('Not signed in.');
    expect(await spa.locator('#login').isVisible()).toBe(true);
    await shot(spa, 'spa-signed-out-after-logout');

    expect(await gatewayCookies()).toEqual([]);
    expect(await replay(cookie, '/api/echo/hello')).toBe(401);
    expect(await replay(cookie, '/auth/user')).toBe(401);
    // The gateway revoked the refresh token at the IdP, too.
    expect((await introspect(refreshToken)).active).toBe(false);
  });

  test('over the whole run, no access or refresh token reached the browser, and no script failed', async () => {
    const tokens = issuedTokens();
    const responses = await settle(received);
    expect(blindSpots(responses, recorder, gatewayUrl)).toEqual([]);
    // The refreshed tokens are in the list too.
    expect(tokens.filter((t) => t.kind === 'access_token')).toHaveLength(2);
    // One exception, by design (DESIGN.md, POST /auth/logout): the logout answer gives the
    // SPA the IdP's end-session URL with the ID token as id_token_hint, and the browser
    // carries it there. Never an access or refresh token.
    expect(leaks(tokens, responses, recorder).sort()).toEqual([`id_token in the URL of GET ${idp.issuer}/session/end (200)`, `id_token in the body of POST ${gatewayUrl}/auth/logout (200)`].sort());
    expect(pageErrors).toEqual([]);
  });

  async function introspect(token: string): Promise<{ active: boolean }> {
    const response = await fetch(`${idp.issuer}/token/introspection`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${DEMO_API_CLIENT_ID}:${DEMO_API_CLIENT_SECRET}`).toString('base64')}` },
      body: new URLSearchParams({ token }),
    });
    if (response.status !== 200) throw new Error(`introspection answered ${response.status}`);
    return (await response.json()) as { active: boolean };
  }

  /** The old cookie, replayed by a plain HTTP client with the CSRF header an SPA would send. */
  async function replay(cookie: { name: string; value: string }, path: string): Promise<number> {
    const response = await fetch(`${gatewayUrl}${path}`, { headers: { cookie: `${cookie.name}=${cookie.value}`, 'x-csrf': '1', accept: 'application/json' } });
    await response.body?.cancel();
    return response.status;
  }

  function issuedTokens(): Token[] {
    return issued.flatMap((t): Token[] => [
      ...(t.accessToken !== undefined ? [{ kind: 'access_token' as const, value: t.accessToken }] : []),
      ...(t.refreshToken !== undefined ? [{ kind: 'refresh_token' as const, value: t.refreshToken }] : []),
      ...(t.idToken !== undefined ? [{ kind: 'id_token' as const, value: t.idToken }] : []),
    ]);
  }
});

/** Waits until the element shows `expected` (a substring), then returns its whole text. */
async function textOnceShown(locator: Locator, expected: string): Promise<string> {
  await locator.filter({ hasText: expected }).waitFor();
  return (await locator.textContent()) ?? '';
}

/**
 * Responses whose body the scan has not read. Allowed: the SPA tab's gateway responses,
 * which the recorder read instead, and the gateway's 4xx answers to an attacker's page,
 * which the browser withholds from that page. Anything else would leave the scan blind.
 */
function blindSpots(responses: Received[], recorder: BodyRecorder, gatewayUrl: string): string[] {
  const recorded = (r: Received): boolean => recorder.bodies.some((b) => b.method === r.method && b.url === r.url && b.status === r.status);
  const withheld = (r: Received): boolean => !r.fromSpa && r.url.startsWith(`${gatewayUrl}/`) && r.status >= 400 && r.status < 500;
  return [...recorder.failures, ...responses.filter((r) => r.body === undefined && !recorded(r) && !withheld(r)).map((r) => `${r.method} ${r.url} (${r.status}): ${r.bodyProblem}`)];
}

/** A token the IdP issued, to look for where it must not be. */
type Token = { kind: 'access_token' | 'refresh_token' | 'id_token'; value: string };

function capture(response: Response, spa: Page): Capture {
  const request = response.request();
  const status = response.status();
  const now: Received = {
    method: request.method(),
    url: response.url(),
    status,
    headers: JSON.stringify(response.headers()),
    body: undefined,
    bodyProblem: 'not loaded yet',
    cookieSent: '',
    fromSpa: response.frame().page() === spa,
  };
  const full = (async (): Promise<Received> => {
    const [requestHeaders, headers] = await Promise.all([request.allHeaders().catch(() => ({}) as Record<string, string>), response.allHeaders().catch(() => response.headers())]);
    const base = { ...now, headers: JSON.stringify(headers), cookieSent: requestHeaders.cookie ?? '' };
    // A redirect has no body to read.
    if (status >= 300 && status < 400) return { ...base, body: '', bodyProblem: '' };
    return response.body().then(
      (b) => ({ ...base, body: b.toString('utf8'), bodyProblem: '' }),
      (err: unknown) => ({ ...base, bodyProblem: err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err) }),
    );
  })();
  return { now, full };
}

/**
 * Every capture, complete. Chromium never finishes loading a body that nobody reads: the
 * SPA ignores the body of a 401 from /auth/user, and the browser withholds the answers to
 * a blocked cross-origin fetch from the page. Those stay pending until the page goes away,
 * so after a grace period they count as unreadable, which the tests then account for.
 */
async function settle(captures: Capture[], graceMs = 3_000): Promise<Received[]> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), graceMs);
  });
  try {
    return await Promise.all(
      captures.map(async (c) => {
        const done = await Promise.race([c.full, late]);
        return done === 'late' ? { ...c.now, bodyProblem: `still loading after ${graceMs} ms` } : done;
      }),
    );
  } finally {
    clearTimeout(timer);
  }
}

/** Where any of the tokens shows up, once per place, in what the browser received. */
function leaks(tokens: Token[], responses: Received[], recorder: BodyRecorder): string[] {
  const found = new Set<string>();
  const places = [...responses, ...recorder.bodies.map((b) => ({ ...b, headers: '' }))];
  for (const r of places) {
    for (const t of tokens) {
      const where = [r.url.includes(t.value) && 'URL', r.headers.includes(t.value) && 'headers', r.body?.includes(t.value) === true && 'body'].filter(Boolean);
      if (where.length > 0) found.add(`${t.kind} in the ${where.join(' and ')} of ${r.method} ${new URL(r.url).origin}${new URL(r.url).pathname} (${r.status})`);
    }
  }
  return [...found];
}
