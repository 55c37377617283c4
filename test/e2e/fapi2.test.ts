import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import type { JWK } from 'oidc-provider';
import type { Browser, BrowserContext } from 'playwright-core';
import { startDpopUpstream, type DpopUpstream } from '../support/dpop-upstream.ts';
import { reserveGatewayUrl, startTestGateway, type TestGateway } from '../support/gateway.ts';
import { startIdp, type TestIdp } from '../support/idp.ts';
import { launchChromium } from './chromium.ts';

const clientKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const CLIENT_PEM = clientKey.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
const CLIENT_JWKS = { keys: [{ ...clientKey.publicKey.export({ format: 'jwk' }), kid: 'bff-fapi2-e2e', alg: 'ES256', use: 'sig' } as JWK] };

/**
 * The FAPI 2.0 profile end to end in a real browser: a test IdP configured as
 * FAPI 2.0 demands it (oidc-provider's FAPI 2.0 profile: PAR required, DPoP,
 * private_key_jwt, ES256 ID tokens, `iss` in the authorization response), the
 * gateway under BFF_PROFILE=fapi2 (http on loopback, the profile's local
 * development allowance), and an upstream that verifies every DPoP proof and
 * the token's binding with jose.
 */
describe('Chromium: BFF_PROFILE=fapi2 against a FAPI 2.0 test IdP', () => {
  let idp: TestIdp;
  let upstream: DpopUpstream;
  let gw: TestGateway;
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    const url = await reserveGatewayUrl();
    idp = await startIdp({ redirectUris: [`${url}/auth/callback`], postLogoutRedirectUris: [`${url}/`], fapi2: true, clientJwks: CLIENT_JWKS });
    upstream = await startDpopUpstream(idp);
    gw = await startTestGateway({
      url,
      issuer: idp.issuer,
      store: 'memory',
      env: {
        BFF_CLIENT_AUTH_METHOD: 'private_key_jwt',
        BFF_CLIENT_PRIVATE_KEY: CLIENT_PEM,
        // The test gateway sets a client secret by default; the profile refuses one, so it is blanked (blank counts as unset).
        BFF_CLIENT_SECRET: '',
        BFF_DPOP: 'true',
        BFF_PROFILE: 'fapi2',
      },
      routes: [{ prefix: '/api/orders', target: upstream.url, token: 'user' }],
    });
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    for (const context of contexts) await context.close();
    await browser?.close();
    await gw?.close();
    await upstream?.close();
    await idp?.close();
  });

  test('the browser logs in (pushed request, iss checked, code exchanged with a signed client assertion and a DPoP proof) and the API call carries a DPoP-bound token', async () => {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    const parBefore = idp.counts.par;
    const codesBefore = idp.counts.authorizationCode;

    await page.goto(`${gw.url}/auth/login?returnTo=${encodeURIComponent('/auth/user')}`);
    await page.waitForURL(`${gw.url}/auth/user`);
    const user = JSON.parse(await page.locator('body').innerText()) as { sub?: string };
    expect(typeof user.sub).toBe('string');
    // The authorization request was pushed (the FAPI IdP refuses any other), and one code was redeemed.
    expect(idp.counts.par).toBe(parBefore + 1);
    expect(idp.counts.authorizationCode).toBe(codesBefore + 1);

    const checksBefore = upstream.checks.length;
    const answer = await page.evaluate(async () => {
      const res = await fetch('/api/orders/7', { headers: { 'x-csrf': '1' } });
      return { status: res.status, body: await res.text() };
    });
    expect(answer.status).toBe(200);
    const checks = upstream.checks.slice(checksBefore);
    expect(checks).toHaveLength(1);
    const [check] = checks;
    expect(check).toMatchObject({ ok: true, method: 'GET', path: '/api/orders/7' });
    // Bound to the session's key: the token's cnf.jkt is the proof key's thumbprint.
    expect(check?.tokenJkt).toBeDefined();
    expect(check?.tokenJkt).toBe(check?.proofJkt);
    // Of the gateway's cookies the browser holds the session cookie only (the login transaction's is gone); the
    // IdP's own cookies (`_session`, `_interaction`) share the host, since cookies do not tell ports apart.
    const cookies = await context.cookies(gw.url);
    expect(cookies.map((c) => c.name).filter((name) => !name.startsWith('_'))).toEqual([gw.config.cookieName]);
    expect(cookies.find((c) => c.name === gw.config.cookieName)?.httpOnly).toBe(true);
  });
});
