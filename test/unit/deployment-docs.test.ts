import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from '@jest/globals';
import { SECRET_VARIABLES } from '../../src/config/secrets.ts';
import { unknownVariables } from '../../src/config/variables.ts';

/**
 * The Dockerfile and docs/deployment.md state facts that no Docker engine checks here
 * (none runs on this machine): these tests keep them true against the code.
 */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const read = (path: string): string => readFileSync(resolve(ROOT, path), 'utf8');
const dockerfile = read('Dockerfile');
const deployment = read('docs/deployment.md');
const runtimeStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));

describe('the image', () => {
  test('runs as a numeric non-root user, so that Kubernetes runAsNonRoot can verify it', () => {
    const users = [...runtimeStage.matchAll(/^USER\s+(\S+)/gm)].map((m) => m[1]);
    expect(users).toHaveLength(1);
    expect(users[0]).toMatch(/^[1-9]\d*(:\d+)?$/);
  });

  test('bakes in no routes file, and points BFF_ROUTES_FILE where the docs mount one', () => {
    expect(runtimeStage).not.toMatch(/^COPY\s+config/m);
    const routesFile = /BFF_ROUTES_FILE=(\S+)/.exec(runtimeStage)?.[1];
    expect(routesFile).toBe('/etc/bff/routes.json');
    expect(deployment).toContain(`:${routesFile}:ro`);
    expect(deployment).toContain('mountPath: /etc/bff,');
  });

  test('its HEALTHCHECK runs the compiled healthcheck entry point, which exists in src', () => {
    expect(runtimeStage).toMatch(/HEALTHCHECK[^\n]*\\\n\s+CMD \["node", "dist\/healthcheck\.js"\]/);
    expect(existsSync(resolve(ROOT, 'src/healthcheck.ts'))).toBe(true);
  });

  test('carries the OCI labels a registry shows', () => {
    for (const label of ['title', 'description', 'licenses', 'version']) expect(runtimeStage).toContain(`org.opencontainers.image.${label}=`);
  });
});

describe('docs/deployment.md', () => {
  test('names every secret that accepts NAME_FILE', () => {
    for (const name of SECRET_VARIABLES) expect([name, deployment.includes(`\`${name}\``)]).toEqual([name, true]);
  });

  test('the Kubernetes example states the numeric user the image runs as', () => {
    const user = /^USER\s+(\d+)/m.exec(runtimeStage)?.[1];
    expect(deployment).toContain('runAsNonRoot: true');
    expect(deployment).toContain(`runAsUser: ${user}`);
  });

  test('the compose check does not skip Redis (--no-deps would make it fail on a first deploy)', () => {
    expect(deployment).not.toContain('--no-deps');
  });
});

describe('the compose quick start (examples/compose)', () => {
  const compose = read('examples/compose/compose.yaml');

  test('builds targets the Dockerfile has, the gateway from the runtime (default, last) stage', () => {
    const targets = [...compose.matchAll(/target: ([\w-]+)/g)].map((m) => m[1]);
    expect(targets.sort()).toEqual(['dev-idp', 'runtime']);
    for (const target of targets) expect(dockerfile).toMatch(new RegExp(`^FROM \\S+ AS ${target}$`, 'm'));
    expect(runtimeStage).toMatch(/^FROM node:24-slim AS runtime$/m);
  });

  test('sets only variables the gateway knows, and the issuer the provider announces', () => {
    const env = Object.fromEntries([...compose.matchAll(/^\s+(BFF_[A-Z_]+): (\S+)$/gm)].map((m) => [m[1], m[2]]));
    expect(Object.keys(env).length).toBeGreaterThanOrEqual(7);
    expect(unknownVariables(env)).toEqual([]);
    expect(compose).toContain(`IDP_ISSUER: ${env.BFF_ISSUER_URL}`);
    expect(compose).toContain(`aliases: [${new URL(env.BFF_ISSUER_URL as string).hostname}]`);
    expect(compose).toContain(`GATEWAY_URL: ${env.BFF_PUBLIC_URL}`);
  });
});
