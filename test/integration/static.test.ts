import { resolve } from 'node:path';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import request from 'supertest';
import { startStack, type Stack } from '../support/stack.ts';

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ env: { BFF_STATIC_DIR: resolve('demo/spa') } });
});
afterAll(async () => {
  await stack?.close();
});

test('the SPA is served with history fallback for navigations only, index.html revalidated', async () => {
  const index = await request(stack.gw.url).get('/').set('Accept', 'text/html');
  expect(index.status).toBe(200);
  expect(index.headers['content-type']).toMatch(/^text\/html/);
  expect(index.headers['cache-control']).toBe('no-cache');
  expect(index.headers['content-security-policy']).toContain("script-src 'self'");

  const deep = await request(stack.gw.url).get('/orders/42').set('Accept', 'text/html,application/xhtml+xml');
  expect(deep.status).toBe(200);
  expect(deep.text).toBe(index.text);

  const script = await request(stack.gw.url).get('/app.js');
  expect(script.status).toBe(200);
  expect(script.headers['content-type']).toMatch(/javascript/);

  // Not navigations: a missing asset, an XHR, /auth and /api paths.
  expect((await request(stack.gw.url).get('/missing.png').set('Accept', 'text/html')).status).toBe(404);
  expect((await request(stack.gw.url).get('/orders/42').set('Accept', 'application/json')).status).toBe(404);
  expect((await request(stack.gw.url).get('/auth/nothing').set('Accept', 'text/html')).status).toBe(404);
  const api = await request(stack.gw.url).get('/api/nothing').set('Accept', 'text/html').set('x-csrf', '1');
  expect(api.status).toBe(404);
  expect(api.headers['content-type']).toMatch(/^application\/problem\+json/);
});
