import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import request from 'supertest';
import { loginThroughGateway } from '../support/browser-flow.ts';
import { startStack, type Stack } from '../support/stack.ts';

let stack: Stack;
let cookie: string;
let tlsDir: string;
let tlsUpstream: https.Server;
let tlsUrl: string;

/** A self-signed certificate for 127.0.0.1, made with the openssl CLI for this run only. */
function selfSignedCertificate(dir: string): { key: string; cert: string; certFile: string } {
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyFile, '-out', certFile], {
    stdio: 'ignore',
  });
  return { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8'), certFile };
}

beforeAll(async () => {
  tlsDir = mkdtempSync(join(tmpdir(), 'bff-tls-'));
  const { key, cert, certFile } = selfSignedCertificate(tlsDir);
  tlsUpstream = https.createServer({ key, cert }, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ url: req.url, tls: true }));
  });
  await new Promise<void>((resolve) => tlsUpstream.listen(0, '127.0.0.1', resolve));
  tlsUrl = `https://127.0.0.1:${(tlsUpstream.address() as AddressInfo).port}`;
  stack = await startStack({
    routes: [
      { prefix: '/api/extra', target: 'ECHO', token: 'none', headers: { 'X-Tenant': 'acme', 'x-api-version': '2' } },
      { prefix: '/api/who', target: 'ECHO', token: 'user', userHeaders: ['email', 'name', 'email_verified'] },
      { prefix: '/api/plain', target: 'ECHO', token: 'user' },
      { prefix: '/api/strip', target: 'ECHO', token: 'none', stripPrefix: true },
      { prefix: '/api/tls-trusted', target: tlsUrl, token: 'none', caFile: certFile },
      { prefix: '/api/tls-untrusted', target: tlsUrl, token: 'none' },
    ],
  });
  cookie = (await loginThroughGateway(stack.gw.url)).cookieHeader;
});
afterAll(async () => {
  await stack?.close();
  tlsUpstream?.closeAllConnections();
  await new Promise<void>((resolve) => (tlsUpstream ? tlsUpstream.close(() => resolve()) : resolve()));
  if (tlsDir) rmSync(tlsDir, { recursive: true, force: true });
});

const get = (path: string) => request(stack.gw.url).get(path).set('x-csrf', '1');

describe('per-route options', () => {
  test('static extra headers reach the upstream, overriding what the browser sent', async () => {
    const res = await get('/api/extra/x').set('X-Tenant', 'evil');
    expect(res.body.headers['x-tenant']).toBe('acme');
    expect(res.body.headers['x-api-version']).toBe('2');
  });

  test('userHeaders send X-User-Sub and the chosen claims, and a browser cannot spoof them on any route', async () => {
    const spoof = { 'X-User-Sub': 'admin', 'X-User-Email': 'admin@evil.example', 'X-User-Role': 'root' };
    const who = await get('/api/who/x').set('Cookie', cookie).set(spoof);
    expect(who.body.headers['x-user-sub']).toBe('alice');
    expect(who.body.headers['x-user-email']).toBe('alice@example.test');
    expect(who.body.headers['x-user-name']).toBe('Test User alice');
    expect(who.body.headers['x-user-email-verified']).toBe('true');
    expect(who.body.headers['x-user-role']).toBeUndefined();
    const plain = await get('/api/plain/x').set('Cookie', cookie).set(spoof);
    for (const name of ['x-user-sub', 'x-user-email', 'x-user-role']) expect(plain.body.headers[name]).toBeUndefined();
    const anonymous = await get('/api/extra/x').set(spoof);
    for (const name of ['x-user-sub', 'x-user-email', 'x-user-role']) expect(anonymous.body.headers[name]).toBeUndefined();
  });

  test('stripPrefix forwards the rest of the path without the prefix', async () => {
    expect((await get('/api/strip')).body.url).toBe('/');
    expect((await get('/api/strip/a/b?c=1')).body.url).toBe('/a/b?c=1');
  });

  test('upstream TLS is verified: a self-signed upstream is 502 unless its CA file is trusted on the route', async () => {
    const untrusted = await get('/api/tls-untrusted/x');
    expect(untrusted.status).toBe(502);
    expect(JSON.parse(untrusted.text).code).toBe('upstream_unavailable');
    const trusted = await get('/api/tls-trusted/x');
    expect(trusted.status).toBe(200);
    expect(trusted.body).toEqual({ url: '/api/tls-trusted/x', tls: true });
  });
});
