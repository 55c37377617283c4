import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { startDemoApi } from '../../demo/api.ts';
import { DEMO_API_CLIENT_ID, DEMO_API_CLIENT_SECRET, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, startDemoIdp, type DemoIdp } from '../../demo/idp.ts';
import { getFreePort } from '../support/ports.ts';
import { launchChromium } from './chromium.ts';
import { startGatewayProcess } from './gateway-process.ts';
import { copyViteProject, startViteDevServer } from './vite-dev-server.ts';

const EXAMPLE_DIR = fileURLToPath(new URL('../../examples/vite-react/', import.meta.url));
const BUILT_DIR = join(EXAMPLE_DIR, 'dist');
const BUILD_COMMANDS = 'npm ci --prefix examples/vite-react && npm run build --prefix examples/vite-react';
const SCREENSHOT_DIR = fileURLToPath(new URL('../../test-results/e2e-vite-react/', import.meta.url));
const USER = 'ada';
const USER_NAME = 'Ada Demo';

/** What the demo API answers (demo/api.ts), as the example renders it. */
type DemoApiAnswer = { message: string; path: string; receivedCookieHeader: boolean; tokenClaims: { active: boolean; sub: string; client_id: string } };

/** Cleanups run in reverse order; every one runs, and their failures are reported together. */
class Cleanups {
  private readonly steps: Array<() => Promise<void> | void> = [];
  add(step: () => Promise<void> | void): void {
    this.steps.push(step);
  }
  async run(): Promise<void> {
    const failures: unknown[] = [];
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step();
      } catch (err) {
        failures.push(err);
      }
    }
    if (failures.length > 0) throw new AggregateError(failures, 'e2e cleanup failed');
  }
}

type Stack = { gatewayUrl: string; idp: DemoIdp; page: Page; context: BrowserContext; pageErrors: string[]; cspViolations: string[] };

/**
 * The demo IdP, the demo API behind `/api/echo` (it introspects the bearer it receives), a
 * gateway child process (memory store) serving the SPA as `spa` says, and a Chromium page.
 */
async function startStack(spa: { BFF_STATIC_DIR: string } | { BFF_SPA_DEV_URL: string }, cleanups: Cleanups): Promise<Stack> {
  const [port, adminPort, idpPort, apiPort] = await Promise.all([getFreePort(), getFreePort(), getFreePort(), getFreePort()]);
  const gatewayUrl = `http://127.0.0.1:${port}`;
  const idp = await startDemoIdp({ port: idpPort, gatewayUrl });
  cleanups.add(() => idp.close());
  const api = await startDemoApi({ port: apiPort, introspectionUrl: `${idp.issuer}/token/introspection`, clientId: DEMO_API_CLIENT_ID, clientSecret: DEMO_API_CLIENT_SECRET });
  cleanups.add(() => api.close());

  const configDir = mkdtempSync(join(tmpdir(), 'bff-e2e-vite-react-'));
  cleanups.add(() => rmSync(configDir, { recursive: true, force: true }));
  const routesFile = join(configDir, 'routes.json');
  // The example's own routes.json, pointed at this run's API.
  const exampleRoutes = JSON.parse(readFileSync(join(EXAMPLE_DIR, 'routes.json'), 'utf8')) as { routes: Array<{ prefix: string; target: string }> };
  writeFileSync(routesFile, JSON.stringify({ routes: exampleRoutes.routes.map((route) => ({ ...route, target: api.url })) }));

  const gateway = await startGatewayProcess({
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
      BFF_LOG_LEVEL: 'warn',
      ...spa,
    },
  });
  cleanups.add(async () => {
    const end = await gateway.stop();
    if (end.code !== 0) throw new Error(`the gateway ended with ${end.code ?? end.signal} on SIGTERM:\n${gateway.output()}`);
  });

  const browser: Browser = await launchChromium();
  cleanups.add(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 1000, height: 800 } });
  cleanups.add(() => context.close());
  const pageErrors: string[] = [];
  const cspViolations: string[] = [];
  const page = await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (message) => {
    // Chromium reports a 401 from /auth/user as a console error too; only the CSP's refusals matter here.
    if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
  });
  return { gatewayUrl, idp, page, context, pageErrors, cspViolations };
}

/** From the example's "Sign in" link through the demo IdP's login and consent forms, back to `returnUrl`. */
async function signIn(stack: Stack, returnUrl: string): Promise<void> {
  const { page, idp } = stack;
  await page.click('#login');
  await page.waitForURL((url) => url.origin === idp.issuer && url.pathname.startsWith('/interaction/'));
  await page.locator('input[name="login"]').pressSequentially(USER);
  await page.locator('input[name="password"]').pressSequentially('any password will do');
  await page.click('button:has-text("Sign-in")');
  // The demo IdP asks for consent on a user's first login.
  await page.locator('button:has-text("Continue")').waitFor();
  await page.click('button:has-text("Continue")');
  await page.waitForURL(returnUrl);
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SCREENSHOT_DIR, `${name}.png`), fullPage: true });
}

describe('Chromium: the Vite + React example (examples/vite-react), built, served by a gateway child process with BFF_STATIC_DIR', () => {
  const cleanups = new Cleanups();
  let stack: Stack;

  beforeAll(async () => {
    // Never a silent skip: CI builds the example before npm test (.ci/run).
    if (!existsSync(join(BUILT_DIR, 'index.html'))) {
      throw new Error(`The Vite example is not built (${join(BUILT_DIR, 'index.html')} is missing). Build it first: ${BUILD_COMMANDS}`);
    }
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    stack = await startStack({ BFF_STATIC_DIR: BUILT_DIR }, cleanups);
  }, 60_000);

  afterAll(() => cleanups.run());

  test('serves the built app under the default CSP; its sign-in link goes through the IdP login and consent forms back to the deep link it started on', async () => {
    const { page, gatewayUrl } = stack;
    // A deep link: the history fallback serves index.html, and the login returns here.
    const start = `${gatewayUrl}/welcome?from=e2e`;
    const document = await page.goto(start);
    expect(document?.status()).toBe(200);
    expect(document?.headers()['content-security-policy']).toContain("script-src 'self'");
    // The production bundle, not the dev server's modules.
    expect(await page.locator('script[type="module"]').getAttribute('src')).toMatch(/^\/assets\/index-[\w-]+\.js$/);
    expect(await textOnceShown(page.locator('#status'), 'Not signed in.')).toBe('Not signed in.');
    expect(await page.locator('#login').getAttribute('href')).toBe(`/auth/login?returnTo=${encodeURIComponent('/welcome?from=e2e')}`);
    await shot(page, 'built-signed-out');

    await signIn(stack, start);
    expect(await textOnceShown(page.locator('#user-name'), USER_NAME)).toBe(USER_NAME);
    await shot(page, 'built-signed-in');
    // One HttpOnly cookie, which the page's JavaScript cannot see.
    expect((await stack.context.cookies(gatewayUrl)).map((c) => ({ name: c.name, httpOnly: c.httpOnly }))).toEqual([{ name: 'bff', httpOnly: true }]);
    // Runs in the page; the project's TypeScript lib has no DOM types.
    expect(await page.evaluate(() => (globalThis as unknown as { document: { cookie: string } }).document.cookie)).toBe('');
  });

  test("calls the API with x-csrf and the session cookie; the upstream got the signed-in user's bearer token, not the cookie", async () => {
    const { page, gatewayUrl } = stack;
    const [request] = await Promise.all([page.waitForRequest((r) => r.url() === `${gatewayUrl}/api/echo/hello`), page.click('#call-api')]);
    expect(await request.headerValue('x-csrf')).toBe('1');
    expect(await request.headerValue('cookie')).toMatch(/^bff=/);
    expect(await textOnceShown(page.locator('#api-status'), 'HTTP')).toBe('HTTP 200');
    const answer = JSON.parse((await page.locator('#api-result').textContent()) ?? '') as DemoApiAnswer;
    expect(answer).toMatchObject({ message: 'Hello from the sample API', path: '/api/echo/hello', receivedCookieHeader: false });
    // The demo API introspected the bearer the gateway injected: this user's, issued to the gateway.
    expect(answer.tokenClaims).toMatchObject({ active: true, sub: USER, client_id: DEMO_CLIENT_ID });
    await shot(page, 'built-api-answer');
  });

  test('signs out: POST /auth/logout with x-csrf, then the returned redirectUrl (the IdP end-session page), back signed out', async () => {
    const { page, gatewayUrl, idp } = stack;
    const [request] = await Promise.all([page.waitForRequest((r) => r.url() === `${gatewayUrl}/auth/logout` && r.method() === 'POST'), page.click('#logout')]);
    expect(await request.headerValue('x-csrf')).toBe('1');
    expect((await request.response())?.status()).toBe(200);
    // The app navigates to the answer's redirectUrl (its body is gone with the navigation, so the URL tells).
    await page.waitForURL((url) => url.origin === idp.issuer && url.pathname.startsWith('/session/end'));
    await page.locator('button[name="logout"]').waitFor();
    await page.click('button[name="logout"]');
    await page.waitForURL(`${gatewayUrl}/`);
    expect(await textOnceShown(page.locator('#status'), 'Not signed in.')).toBe('Not signed in.');
    expect(await stack.context.cookies(gatewayUrl)).toEqual([]);
    await shot(page, 'built-signed-out-again');
  });

  test('no script error and nothing refused by the CSP along the way', () => {
    expect(stack.pageErrors).toEqual([]);
    expect(stack.cspViolations).toEqual([]);
  });
});

describe("Chromium: the example in development: Vite's dev server behind the gateway (BFF_SPA_DEV_URL), HMR through the gateway", () => {
  const cleanups = new Cleanups();
  let stack: Stack;
  let appSource: string;
  let sockets: SocketWatch;

  beforeAll(async () => {
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    // A scratch copy, so that the test can edit a source file without touching the working tree.
    const copy = copyViteProject(EXAMPLE_DIR);
    cleanups.add(() => copy.remove());
    appSource = join(copy.dir, 'src', 'App.tsx');
    const vite = await startViteDevServer({ root: copy.dir });
    cleanups.add(() => vite.stop());
    stack = await startStack({ BFF_SPA_DEV_URL: vite.url }, cleanups);
    sockets = watchSockets(stack.page);
  }, 60_000);

  afterAll(() => cleanups.run());

  test("the page comes from Vite through the gateway, and Vite's HMR WebSocket connects to the gateway's origin", async () => {
    const { page, gatewayUrl } = stack;
    const document = await page.goto(`${gatewayUrl}/`);
    expect(document?.status()).toBe(200);
    expect(await document?.text()).toContain('/@vite/client');
    expect(await textOnceShown(page.locator('#status'), 'Not signed in.')).toBe('Not signed in.');

    const connected = await sockets.frame((payload) => payload.includes('"type":"connected"'), 'Vite\'s "connected" message');
    expect(connected.url).toMatch(new RegExp(`^ws://127\\.0\\.0\\.1:${new URL(gatewayUrl).port}/\\?token=`));
    await shot(page, 'dev-signed-out');
  });

  test('an edit to src/App.tsx reaches the open page as a hot update over the gateway, without a reload', async () => {
    const { page } = stack;
    await page.evaluate(() => {
      (globalThis as unknown as { beforeEdit: boolean }).beforeEdit = true;
    });
    const framesBefore = sockets.count();
    writeFileSync(appSource, readFileSync(appSource, 'utf8').replace('<p id="status">Not signed in.</p>', '<p id="status">Not signed in (edited while running).</p>'));

    const update = await sockets.frame((payload) => payload.includes('"type":"update"'), 'an HMR update for src/App.tsx', framesBefore);
    expect(update.payload).toContain('/src/App.tsx');
    expect(await textOnceShown(page.locator('#status'), 'edited while running')).toBe('Not signed in (edited while running).');
    // Hot replaced, not reloaded: the page's globals survived.
    expect(await page.evaluate(() => (globalThis as unknown as { beforeEdit?: boolean }).beforeEdit)).toBe(true);
    await shot(page, 'dev-after-hot-update');
  });

  test("signing in works in development too, and the only WebSocket the page opened was the gateway's (no direct fallback to Vite)", async () => {
    const { page, gatewayUrl } = stack;
    await signIn(stack, `${gatewayUrl}/`);
    expect(await textOnceShown(page.locator('#user-name'), USER_NAME)).toBe(USER_NAME);
    await shot(page, 'dev-signed-in');

    const gatewaySocket = new RegExp(`^ws://127\\.0\\.0\\.1:${new URL(gatewayUrl).port}/\\?token=`);
    expect(sockets.urls.length).toBeGreaterThan(0);
    expect(sockets.urls.filter((url) => !gatewaySocket.test(url))).toEqual([]);
    expect(stack.pageErrors).toEqual([]);
  });
});

type SocketFrame = { url: string; payload: string };
type SocketWatch = {
  /** Every WebSocket URL the page opened, in order. */
  readonly urls: readonly string[];
  /** Frames received so far, over all sockets. */
  count(): number;
  /** The first received frame (from index `from` on) that `matches`, waiting for it if need be. */
  frame(matches: (payload: string) => boolean, what: string, from?: number): Promise<SocketFrame>;
};

const FRAME_TIMEOUT_MS = 20_000;

/** Records every WebSocket the page opens and every frame it receives, from the moment of the call. */
function watchSockets(page: Page): SocketWatch {
  const urls: string[] = [];
  const frames: SocketFrame[] = [];
  const waiters = new Set<(frame: SocketFrame) => void>();
  page.on('websocket', (socket) => {
    urls.push(socket.url());
    socket.on('framereceived', ({ payload }) => {
      const frame = { url: socket.url(), payload: typeof payload === 'string' ? payload : payload.toString('utf8') };
      frames.push(frame);
      for (const waiter of [...waiters]) waiter(frame);
    });
  });
  return {
    urls,
    count: () => frames.length,
    frame: (matches, what, from = 0) => {
      const seen = frames.slice(from).find((f) => matches(f.payload));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`no WebSocket frame with ${what} within ${FRAME_TIMEOUT_MS} ms; sockets opened: ${JSON.stringify(urls)}`));
        }, FRAME_TIMEOUT_MS);
        const waiter = (frame: SocketFrame): void => {
          if (!matches(frame.payload)) return;
          clearTimeout(timer);
          waiters.delete(waiter);
          resolve(frame);
        };
        waiters.add(waiter);
      });
    },
  };
}

/** Waits until the element shows `expected` (a substring), then returns its whole text. */
async function textOnceShown(locator: Locator, expected: string): Promise<string> {
  await locator.filter({ hasText: expected }).waitFor();
  return (await locator.textContent()) ?? '';
}
