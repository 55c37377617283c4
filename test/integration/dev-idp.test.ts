import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { getFreePort } from '../support/ports.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Output of a child so far, and a way to wait until it says something. */
function watch(child: ChildProcess): { text: () => string; until: (pattern: RegExp, ms: number) => Promise<void> } {
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  return {
    text: () => out,
    until: (pattern, ms) =>
      new Promise((done, fail) => {
        const deadline = setTimeout(() => fail(new Error(`no ${pattern} within ${ms} ms; output: ${out}`)), ms);
        const look = (): void => {
          if (pattern.test(out)) {
            clearTimeout(deadline);
            child.stdout?.off('data', look);
            done();
          }
        };
        child.stdout?.on('data', look);
        child.once('exit', () => fail(new Error(`exited early; output: ${out}`)));
        look();
      }),
  };
}

describe('npm run idp: a development provider on its own', () => {
  let idp: ChildProcess;
  let printed: string;
  let gatewayUrl: string;

  beforeAll(async () => {
    gatewayUrl = `http://127.0.0.1:${await getFreePort()}`;
    idp = spawn(process.execPath, [join(ROOT, 'demo/start.js'), 'idp'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', IDP_PORT: String(await getFreePort()), GATEWAY_URL: gatewayUrl },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output = watch(idp);
    await output.until(/Ctrl\+C stops it/, 20_000);
    printed = output.text();
  }, 30_000);
  afterAll(async () => {
    if (idp && idp.exitCode === null) {
      const exited = new Promise((done) => idp.once('exit', done));
      idp.kill('SIGTERM');
      await exited;
    }
  });

  test('prints the variables for the gateway, without the development-only warnings in red', () => {
    for (const name of ['BFF_PUBLIC_URL', 'BFF_ISSUER_URL', 'BFF_ALLOW_INSECURE_ISSUER', 'BFF_CLIENT_ID', 'BFF_CLIENT_SECRET']) expect(printed).toMatch(new RegExp(`^\\s+${name}=\\S+$`, 'm'));
    expect(printed).toContain(`BFF_PUBLIC_URL=${gatewayUrl}`);
    expect(printed).not.toContain('oidc-provider WARNING');
  });

  test('a gateway configured with what it printed passes --check against it', async () => {
    const env: Record<string, string> = {};
    for (const match of printed.matchAll(/^\s+(BFF_[A-Z_]+)=(\S+)$/gm)) if (match[1] !== 'BFF_SESSION_SECRETS') env[match[1] as string] = match[2] as string;
    const dir = mkdtempSync(join(tmpdir(), 'bff-dev-idp-'));
    writeFileSync(join(dir, 'routes.json'), JSON.stringify({ routes: [] }));
    const check = spawn(process.execPath, [join(ROOT, 'src/index.ts'), '--check'], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', ...env, BFF_SESSION_SECRETS: 'a-fresh-session-secret-of-at-least-32-bytes', BFF_ROUTES_FILE: join(dir, 'routes.json') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output = watch(check);
    const code = await new Promise<number | null>((done) => check.once('exit', done));
    expect([code, output.text()]).toEqual([0, expect.stringContaining('Result: OK')]);
  }, 30_000);
});

describe('npm run idp in a container (the compose quick start): IDP_ISSUER and IDP_HOST', () => {
  test('announces the issuer it is given, on the address it is told to listen on', async () => {
    const port = await getFreePort();
    const idp = spawn(process.execPath, [join(ROOT, 'demo/start.js'), 'idp'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', IDP_PORT: String(port), IDP_HOST: '127.0.0.1', IDP_ISSUER: `http://idp.localhost:${port}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const output = watch(idp);
      await output.until(/Ctrl\+C stops it/, 20_000);
      expect(output.text()).toContain(`BFF_ISSUER_URL=http://idp.localhost:${port}`);
      // (Endpoint URLs follow the Host the request used: the gateway and the browser both use the issuer's.)
      const discovery = (await (await fetch(`http://127.0.0.1:${port}/.well-known/openid-configuration`)).json()) as { issuer: string };
      expect(discovery.issuer).toBe(`http://idp.localhost:${port}`);
    } finally {
      const exited = new Promise((done) => idp.once('exit', done));
      idp.kill('SIGTERM');
      await exited;
    }
  }, 30_000);
});
