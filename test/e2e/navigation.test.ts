import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Frame, type Page, type Request } from 'playwright-core';
import { reserveGatewayUrl, startTestGateway, type TestGateway } from '../support/gateway.ts';
import { startIdp, type TestIdp } from '../support/idp.ts';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SCREENSHOT_DIR = fileURLToPath(new URL('../../test-results/e2e/', import.meta.url));
/** A phone: the error pages must be readable there. */
const PHONE = { viewport: { width: 375, height: 667 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };

describe("Chromium: the gateway's own pages for navigations (in-process gateway, memory store, test IdP)", () => {
  let idp: TestIdp;
  let gw: TestGateway;
  let browser: Browser;
  let context: BrowserContext;
  /** Console errors of every page: a refused inline style (CSP) shows there. */
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    const url = await reserveGatewayUrl();
    idp = await startIdp({
      redirectUris: [`${url}/auth/callback`],
      postLogoutRedirectUris: [`${url}/`],
      // The registration that puts `sid` into the test IdP's ID tokens (oidc-provider has no front-channel logout).
      backchannelLogoutUri: `${url}/auth/backchannel-logout`,
    });
    // The provider is down when the gateway starts.
    await idp.stop();
    gw = await startTestGateway({ url, issuer: idp.issuer, store: 'memory' });
    // The stand-in IdP logout page below is fulfilled by Playwright, without an address: Chromium counts it as a
    // public page and would refuse its frame's request to the loopback gateway (Local Network Access). In production
    // the IdP and the gateway are both public; that check is not what this suite is about.
    browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, '--disable-features=LocalNetworkAccessChecks'] });
    context = await browser.newContext(PHONE);
    context.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await gw?.close();
    await idp?.close();
  });

  test('a navigation to /auth/login with the provider down shows the styled 503 page, readable on a phone', async () => {
    const page = await context.newPage();
    try {
      consoleErrors.length = 0;
      const response = await page.goto(`${gw.url}/auth/login?returnTo=/orders`);
      expect(response?.status()).toBe(503);
      expect(response?.headers()['content-type']).toMatch(/^text\/html/);
      await expect(page.title()).resolves.toBe('Sign-in is unavailable');
      expect(await page.locator('h1').innerText()).toBe('Sign-in is unavailable');
      expect(await page.locator('main p').first().innerText()).toBe('The identity provider is not reachable right now. Try again in 5 seconds.');
      expect(await page.locator('code').innerText()).toBe('idp_unavailable');
      // Not JSON: nothing of a problem document reaches the user.
      expect(await page.locator('body').innerText()).not.toContain('"status"');

      // The style applied (its CSP hash matched): the primary link is a filled button, the card spans the narrow screen.
      const look = await page.evaluate(() => {
        // No DOM lib in this project's types: the little of the window this needs, spelled out.
        type Element = { getBoundingClientRect(): { width: number; height: number } };
        const w = globalThis as unknown as {
          getComputedStyle(element: Element): { backgroundColor: string; fontSize: string };
          document: { querySelector(selector: string): Element; body: Element; documentElement: { scrollWidth: number } };
          innerWidth: number;
        };
        const button = w.document.querySelector('a.primary');
        return {
          buttonBackground: w.getComputedStyle(button).backgroundColor,
          buttonHeight: button.getBoundingClientRect().height,
          fontSize: parseFloat(w.getComputedStyle(w.document.body).fontSize),
          mainWidth: w.document.querySelector('main').getBoundingClientRect().width,
          viewportWidth: w.innerWidth,
          scrollWidth: w.document.documentElement.scrollWidth,
        };
      });
      expect(look.buttonBackground).not.toBe('rgba(0, 0, 0, 0)');
      // Tap targets of at least 44 CSS pixels, text of at least 16, no sideways scrolling.
      expect(look.buttonHeight).toBeGreaterThanOrEqual(44);
      expect(look.fontSize).toBeGreaterThanOrEqual(16);
      expect(look.viewportWidth).toBe(375);
      expect(look.mainWidth).toBe(375);
      expect(look.scrollWidth).toBeLessThanOrEqual(look.viewportWidth);
      expect(consoleErrors.filter((text) => /Content Security Policy/i.test(text))).toEqual([]);
      await page.screenshot({ path: join(SCREENSHOT_DIR, 'login-idp-down-phone.png'), fullPage: true });
      // "Sign in again" starts a new login (not followed here: closing a page right after a second navigation hangs Playwright at times).
      expect(await page.locator('a.primary').getAttribute('href')).toBe('/auth/login');
    } finally {
      await page.close();
    }
  });

  describe("front-channel logout in the IdP's iframe", () => {
    beforeAll(async () => {
      await idp.start();
      // The gateway retries discovery in the background; readiness says when it has the metadata.
      const deadline = Date.now() + 30_000;
      while ((await fetch(`${gw.gateway.adminUrl}/readyz`)).status !== 200) {
        if (Date.now() > deadline) throw new Error('the gateway did not load the IdP metadata');
        await delay(200);
      }
    }, 40_000);

    /** A page at `origin` standing in for the IdP's logout page: it frames the gateway's front-channel logout URI. */
    async function logoutPageAt(origin: string, frameSrc: string): Promise<{ page: Page; frame: Frame; status: number | undefined }> {
      const page = await context.newPage();
      const pageUrl = `${origin}/test-logout-page`;
      await page.route(pageUrl, (route) =>
        route.fulfill({ contentType: 'text/html', body: `<!doctype html><title>IdP logout</title><iframe id="rp" src="${frameSrc.replace(/&/g, '&amp;')}"></iframe>` }),
      );
      // Answered or failed: either way the frame's navigation is over once its request is.
      const isFrameRequest = (r: Request): boolean => r.url().startsWith(`${gw.url}/auth/frontchannel-logout`);
      const framed = Promise.race([page.waitForEvent('requestfinished', isFrameRequest), page.waitForEvent('requestfailed', isFrameRequest)]);
      await page.goto(pageUrl);
      const request = await framed;
      await page.waitForLoadState('load');
      const frame = page.frames().find((f) => f !== page.mainFrame());
      if (!frame) throw new Error('no iframe');
      return { page, frame, status: (await request.response())?.status() };
    }

    async function frameText(frame: Frame): Promise<string> {
      try {
        return await frame.locator('body').innerText({ timeout: 5_000 });
      } catch {
        return '';
      }
    }

    test("framed by the IdP's origin it renders and ends the browser's session; framed by any other origin it is blocked", async () => {
      // A real login in this browser.
      const login = await context.newPage();
      await login.goto(`${gw.url}/auth/login?returnTo=/`);
      await login.waitForURL((u) => u.origin === gw.url && !u.pathname.startsWith('/auth/'));
      const user = await login.goto(`${gw.url}/auth/user`);
      expect(user?.status()).toBe(200);
      const sid = ((await user?.json()) as { claims: { sid: string } }).claims.sid;
      expect(typeof sid).toBe('string');

      const srcFor = (value: string): string => `${gw.url}/auth/frontchannel-logout?iss=${encodeURIComponent(idp.issuer)}&sid=${encodeURIComponent(value)}`;

      // Another origin (the IdP's host by address rather than by name) frames it: the browser refuses to show it.
      // (With a sid of no session: the request itself still reaches the gateway, framing or not; the sid is what decides.)
      const impostor = await logoutPageAt(`http://127.0.0.1:${idp.port}`, srcFor('no-such-idp-session'));
      // The gateway answered; the browser would not show the answer in that frame.
      expect(impostor.status).toBe(200);
      expect(await frameText(impostor.frame)).not.toContain('Signed out');
      expect((await login.goto(`${gw.url}/auth/user`))?.status()).toBe(200);

      // The IdP's own origin: the frame shows the page.
      const real = await logoutPageAt(new URL(idp.issuer).origin, srcFor(sid));
      expect(real.status).toBe(200);
      expect(await frameText(real.frame)).toBe('Signed out.');
      await real.page.screenshot({ path: join(SCREENSHOT_DIR, 'frontchannel-logout-in-idp-frame.png') });

      // The session this browser signed in with is over.
      const after = await login.goto(`${gw.url}/auth/user`);
      expect(after?.status()).toBe(401);
      // Pages close with the context: closing a page right after its navigations hangs Playwright at times.
    });
  });
});
