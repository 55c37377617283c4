import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import request from 'supertest';
import { reserveGatewayUrl, startTestGateway, type TestGateway } from '../support/gateway.ts';
import { startIdp, type TestIdp } from '../support/idp.ts';

const INDEX_HTML = '<!doctype html><html><body><div id="app"></div></body></html>';
const APP_JS = 'console.log("app");\n';
/** Unique per run, so that finding it in a body can only mean the file outside was served. */
const SECRET = `outside-secret-${randomBytes(12).toString('hex')}`;
const HTML = 'text/html,application/xhtml+xml,*/*;q=0.8';

let idp: TestIdp;
let outside: string;
const dirs: string[] = [];
const gateways: TestGateway[] = [];

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

async function gatewayServing(dir: string): Promise<string> {
  const gw = await startTestGateway({ url: await reserveGatewayUrl(), issuer: idp.issuer, store: 'memory', env: { BFF_STATIC_DIR: dir } });
  gateways.push(gw);
  return gw.url;
}

function expectNotServed(res: request.Response): void {
  expect(res.status).toBe(404);
  expect(res.text).not.toContain(SECRET);
}

beforeAll(async () => {
  // Discovery only: no login happens here, so the registered redirect URI is never used.
  idp = await startIdp({ redirectUris: ['http://127.0.0.1/auth/callback'] });
  // What must never be served: a secret file, a directory holding one, an index.html.
  outside = tempDir('bff-outside-');
  writeFileSync(join(outside, 'secret.txt'), SECRET);
  mkdirSync(join(outside, 'private'));
  writeFileSync(join(outside, 'private', 'secret.txt'), SECRET);
  writeFileSync(join(outside, 'private', 'index.html'), `<html>${SECRET}</html>`);
  writeFileSync(join(outside, 'index.html'), `<html>${SECRET}</html>`);
});
afterAll(async () => {
  await Promise.all(gateways.map((gw) => gw.close()));
  await idp?.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('BFF_STATIC_DIR serves only files whose real path is inside it', () => {
  let url: string;

  beforeAll(async () => {
    const dir = tempDir('bff-spa-');
    writeFileSync(join(dir, 'index.html'), INDEX_HTML);
    mkdirSync(join(dir, 'assets'));
    writeFileSync(join(dir, 'assets', 'app.js'), APP_JS);
    symlinkSync(join(outside, 'secret.txt'), join(dir, 'leak.txt'));
    symlinkSync(join('..', basename(outside), 'secret.txt'), join(dir, 'relative-leak.txt'));
    symlinkSync(join(outside, 'private'), join(dir, 'private'));
    symlinkSync(join('assets', 'app.js'), join(dir, 'app-link.js'));
    symlinkSync(join(dir, 'assets'), join(dir, 'linked-assets'));
    url = await gatewayServing(dir);
  });

  test('a symlink to a file outside the directory is 404, its content never in the body', async () => {
    for (const path of ['/leak.txt', '/relative-leak.txt']) {
      expectNotServed(await request(url).get(path));
      expectNotServed(await request(url).get(path).set('Accept', HTML));
      expect((await request(url).head(path)).status).toBe(404);
    }
  });

  test('a symlinked directory leading out is not served: not its files, not its index.html', async () => {
    for (const path of ['/private/secret.txt', '/private%2Fsecret.txt', '/private/index.html']) expectNotServed(await request(url).get(path));
    expectNotServed(await request(url).get('/private/').set('Accept', 'application/json'));
    // A navigation there is the SPA's own route, as if the directory were absent.
    for (const path of ['/private', '/private/']) {
      const res = await request(url).get(path).set('Accept', HTML);
      expect(res.status).toBe(200);
      expect(res.text).toBe(INDEX_HTML);
    }
  });

  test('symlinks that stay inside the directory are served', async () => {
    for (const path of ['/assets/app.js', '/app-link.js', '/linked-assets/app.js']) {
      const res = await request(url).get(path);
      expect(res.status).toBe(200);
      expect(res.text).toBe(APP_JS);
    }
  });
});

test('an index.html that is a symlink leading out is refused, for the history fallback too', async () => {
  const dir = tempDir('bff-spa-');
  symlinkSync(join(outside, 'index.html'), join(dir, 'index.html'));
  const url = await gatewayServing(dir);
  for (const path of ['/', '/orders/42', '/index.html']) expectNotServed(await request(url).get(path).set('Accept', HTML));
});

test('BFF_STATIC_DIR itself a symlink: files of the release it points to now are served, after a switch too', async () => {
  const releases = tempDir('bff-releases-');
  for (const release of ['r1', 'r2']) {
    mkdirSync(join(releases, release));
    writeFileSync(join(releases, release, 'index.html'), INDEX_HTML);
    writeFileSync(join(releases, release, 'version.txt'), release);
  }
  symlinkSync(join(outside, 'secret.txt'), join(releases, 'r2', 'leak.txt'));
  const current = join(releases, 'current');
  symlinkSync('r1', current);
  const url = await gatewayServing(current);
  expect((await request(url).get('/version.txt')).text).toBe('r1');

  // A deploy switches the link (rename over it, as deploy tools do).
  symlinkSync('r2', join(releases, 'next'));
  renameSync(join(releases, 'next'), current);
  const switched = await request(url).get('/version.txt');
  expect(switched.status).toBe(200);
  expect(switched.text).toBe('r2');
  expectNotServed(await request(url).get('/leak.txt'));
});
