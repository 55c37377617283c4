import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { connect, type AddressInfo } from 'node:net';
import request from 'supertest';
import { reserveGatewayUrl, startTestGateway, type TestGateway } from '../support/gateway.ts';
import { startIdp, type TestIdp } from '../support/idp.ts';

let idp: TestIdp;
const gateways: TestGateway[] = [];

beforeAll(async () => {
  // Discovery only: no login happens here, so the registered redirect URI is never used.
  idp = await startIdp({ redirectUris: ['http://127.0.0.1/auth/callback'] });
});
afterAll(async () => {
  await Promise.all(gateways.map((gw) => gw.close()));
  await idp?.close();
});

async function gatewayWith(env: Record<string, string>, host?: string): Promise<TestGateway> {
  const gw = await startTestGateway({ url: await reserveGatewayUrl(), issuer: idp.issuer, store: 'memory', env, ...(host !== undefined ? { host } : {}) });
  gateways.push(gw);
  return gw;
}

const addressOf = (server: { address(): unknown }): AddressInfo => server.address() as AddressInfo;

/** Resolves with how a plain TCP connection to host:port ends: `connected`, or the error code. */
function tryConnect(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.setTimeout(2000, () => socket.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

describe('BFF_ADMIN_HOST', () => {
  test('127.0.0.1 keeps the admin port on loopback while the main port listens on all interfaces', async () => {
    const gw = await gatewayWith({ BFF_ADMIN_HOST: '127.0.0.1' }, '0.0.0.0');
    expect(addressOf(gw.gateway.server).address).toBe('0.0.0.0');
    expect(addressOf(gw.gateway.adminServer)).toMatchObject({ address: '127.0.0.1', family: 'IPv4' });
    expect((await request(gw.gateway.adminUrl).get('/healthz')).status).toBe(200);
  });

  test('127.0.0.2: the admin port answers there and not on 127.0.0.1, where the main port still is', async () => {
    const gw = await gatewayWith({ BFF_ADMIN_HOST: '127.0.0.2' });
    const admin = addressOf(gw.gateway.adminServer);
    expect(admin).toMatchObject({ address: '127.0.0.2', family: 'IPv4' });
    expect(gw.gateway.adminUrl).toBe(`http://127.0.0.2:${admin.port}`);
    expect((await request(`http://127.0.0.2:${admin.port}`).get('/healthz')).status).toBe(200);
    expect(await tryConnect('127.0.0.1', admin.port)).toBe('ECONNREFUSED');
    expect(addressOf(gw.gateway.server).address).toBe('127.0.0.1');
    expect((await request(gw.gateway.url).get('/auth/user')).status).toBe(401);
  });

  test('a hostname is resolved and listened on, apart from the main port', async () => {
    const gw = await gatewayWith({ BFF_ADMIN_HOST: 'localhost' }, '127.0.0.2');
    expect(addressOf(gw.gateway.server).address).toBe('127.0.0.2');
    expect(['127.0.0.1', '::1']).toContain(addressOf(gw.gateway.adminServer).address);
    expect((await request(gw.gateway.adminUrl).get('/healthz')).status).toBe(200);
  });
});
