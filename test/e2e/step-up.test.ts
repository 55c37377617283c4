import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startEcho, type EchoServer } from '../support/echo.ts';
import { reserveGatewayUrl, startTestGateway, type TestGateway } from '../support/gateway.ts';
import { startIdp, type TestIdp } from '../support/idp.ts';
import { launchChromium } from './chromium.ts';

const LOA1 = 'urn:test:loa:1';
const LOA2 = 'urn:test:loa:2';

/**
 * A minimal SPA: buttons that call a step-up route and a plain route, and show the outcome.
 * On `step_up_required` it does what the README tells SPAs to do: navigate to `loginUrl`.
 * Its fetches send a same-origin Referer (the gateway's pages say `no-referrer`), so that
 * the gateway can bring the user back to this very page.
 */
const INDEX_HTML = `<!doctype html><html><head><meta charset="utf-8"><title>Step-up SPA</title><script src="/app.js" defer></script></head>
<body><button id="strong">strong</button><button id="plain">plain</button><p id="out">idle</p></body></html>`;
const APP_JS = `
const out = document.getElementById('out');
async function call(path) {
  const res = await fetch(path, { headers: { 'x-csrf': '1' }, referrerPolicy: 'same-origin' });
  const body = await res.json();
  if (res.status === 401 && body.code === 'step_up_required') {
    out.textContent = 'stepping up';
    location.assign(body.loginUrl);
    return;
  }
  out.textContent = res.status + ' ' + (body.code || 'ok');
}
document.getElementById('strong').addEventListener('click', () => call('/api/strong/data'));
document.getElementById('plain').addEventListener('click', () => call('/api/plain/data'));
`;

describe('Chromium: step-up from an SPA (in-process gateway, memory store, test IdP with acr values)', () => {
  let idp: TestIdp;
  let echo: EchoServer;
  let gw: TestGateway;
  let browser: Browser;
  let spaDir: string;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    spaDir = mkdtempSync(join(tmpdir(), 'bff-e2e-stepup-'));
    writeFileSync(join(spaDir, 'index.html'), INDEX_HTML);
    writeFileSync(join(spaDir, 'app.js'), APP_JS);
    const url = await reserveGatewayUrl();
    idp = await startIdp({ redirectUris: [`${url}/auth/callback`], postLogoutRedirectUris: [`${url}/`], acrValues: [LOA1, LOA2] });
    echo = await startEcho();
    gw = await startTestGateway({
      url,
      issuer: idp.issuer,
      store: 'memory',
      env: { BFF_STATIC_DIR: spaDir },
      routes: [
        { prefix: '/api/strong', target: echo.url, token: 'user', stepUp: { acr: LOA2 } },
        { prefix: '/api/plain', target: echo.url, token: 'user' },
      ],
    });
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    for (const context of contexts) await context.close();
    await browser?.close();
    await gw?.close();
    await echo?.close();
    await idp?.close();
    if (spaDir) rmSync(spaDir, { recursive: true, force: true });
  });

  /** A new browser profile, signed in (with the IdP's default acr) and showing the SPA at /orders?tab=1. */
  async function signedInSpa(): Promise<Page> {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    await page.goto(`${gw.url}/auth/login?returnTo=${encodeURIComponent('/orders?tab=1')}`);
    await page.waitForURL(`${gw.url}/orders?tab=1`);
    await page.locator('#strong').waitFor();
    const user = await page.evaluate(async () => (await fetch('/auth/user')).json());
    expect(user).toMatchObject({ acr: LOA1 });
    return page;
  }

  /** Clicks a button that leads through a login round trip and waits until the SPA is back and loaded. */
  async function clickThroughLogin(page: Page, button: string): Promise<void> {
    const back = page.waitForResponse((response) => response.url().startsWith(`${gw.url}/auth/callback`));
    await page.locator(button).click();
    await back;
    await page.waitForURL(`${gw.url}/orders?tab=1`);
    await page.locator('#out').waitFor();
    await page.waitForFunction(() => (globalThis as unknown as { document: { readyState: string } }).document.readyState === 'complete');
  }

  test('step_up_required → loginUrl → the IdP is asked for the acr → back on the page → the call succeeds', async () => {
    const page = await signedInSpa();
    const seen = idp.authorizationRequests.length;
    await clickThroughLogin(page, '#strong');
    expect(idp.authorizationRequests.slice(seen)).toEqual([expect.objectContaining({ acr_values: LOA2 })]);
    expect(await page.evaluate(async () => (await fetch('/auth/user')).json())).toMatchObject({ acr: LOA2 });
    const before = echo.requests.length;
    await page.locator('#strong').click();
    await page.waitForFunction(() => (globalThis as unknown as { document: { getElementById(id: string): { textContent: string } } }).document.getElementById('out').textContent !== 'idle');
    expect(await page.locator('#out').textContent()).toBe('200 ok');
    expect(echo.requests.length).toBe(before + 1);
  });

  test('a step-up cancelled at the IdP comes back to the page; the old session still works on a route without step-up', async () => {
    const page = await signedInSpa();
    idp.cancelNext = true;
    await clickThroughLogin(page, '#strong');
    expect(await page.locator('#out').textContent()).toBe('idle');
    await page.locator('#plain').click();
    await page.waitForFunction(() => (globalThis as unknown as { document: { getElementById(id: string): { textContent: string } } }).document.getElementById('out').textContent !== 'idle');
    expect(await page.locator('#out').textContent()).toBe('200 ok');
    const again = await page.evaluate(async () => {
      const res = await fetch('/api/strong/data', { headers: { 'x-csrf': '1' } });
      return { status: res.status, body: (await res.json()) as { code: string } };
    });
    expect(again).toMatchObject({ status: 401, body: { code: 'step_up_required' } });
    expect(await page.evaluate(async () => (await fetch('/auth/user')).json())).toMatchObject({ acr: LOA1 });
  });
});
