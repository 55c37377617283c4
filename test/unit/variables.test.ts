import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from '@jest/globals';
import { CONFIG_VARIABLES, ENV_FILE_VARIABLE, KNOWN_VARIABLES, maskUrl, unknownVariables } from '../../src/config/variables.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const read = (path: string): string => readFileSync(resolve(ROOT, path), 'utf8');

describe('unknown BFF_* variables', () => {
  test.each([
    ['BFF_SCOPE', 'BFF_SCOPES'],
    ['BFF_LOGLEVEL', 'BFF_LOG_LEVEL'],
    ['BFF_LOG_LVL', 'BFF_LOG_LEVEL'],
    ['BFF_CLIENTSECRET', 'BFF_CLIENT_SECRET'],
    ['BFF_CLIENT_SECRETS_FILE', 'BFF_CLIENT_SECRET_FILE'],
    ['BFF_REDIS', 'BFF_REDIS_URL'],
    ['BFF_SESSION_SECRET', 'BFF_SESSION_SECRETS'],
    ['BFF_PUBLIK_URL', 'BFF_PUBLIC_URL'],
    ['BFF_SHUTDOWN_TIMEOUT_SEC', 'BFF_SHUTDOWN_TIMEOUT'],
  ])('%s: did you mean %s?', (typo, meant) => {
    expect(unknownVariables({ [typo]: 'x' })).toEqual([{ name: typo, suggestion: meant }]);
  });

  test('a name like no other gets no suggestion', () => {
    expect(unknownVariables({ BFF_ENABLE_TELEPORTATION: 'true' })).toEqual([{ name: 'BFF_ENABLE_TELEPORTATION' }]);
  });

  test('known variables, their _FILE forms and other prefixes are not reported', () => {
    const env = Object.fromEntries([...KNOWN_VARIABLES].map((name) => [name, 'x']));
    expect(unknownVariables({ ...env, PATH: '/bin', NODE_ENV: 'production', BFFX: '1' })).toEqual([]);
    expect(KNOWN_VARIABLES.has('BFF_CLIENT_SECRET_FILE')).toBe(true);
    expect(KNOWN_VARIABLES.has('BFF_ENV_FILE')).toBe(true);
  });
});

describe('one list of variables, kept in step with the code and the documentation', () => {
  const names = CONFIG_VARIABLES.map((v) => v.name);

  test('every BFF_* name the configuration code reads is known, and every known one is read', () => {
    const code = ['src/config/load.ts', 'src/config/redis-topology.ts', 'src/config/abuse-limits.ts', 'src/config/env-file.ts', 'src/config/secrets.ts', 'src/config/workers.ts'].map(read).join('\n');
    const inCode = new Set(code.match(/BFF_[A-Z_]+[A-Z]/g));
    // secrets.ts builds `${name}_FILE` at run time; KNOWN_VARIABLES derives those the same way.
    for (const name of inCode) expect([name, KNOWN_VARIABLES.has(name)]).toEqual([name, true]);
    for (const name of names) expect([name, inCode.has(name)]).toEqual([name, true]);
  });

  test('the README configuration table has a row for every variable', () => {
    const readme = read('README.md');
    for (const name of [...names, 'BFF_ENV_FILE']) expect([name, new RegExp(`^\\| \`${name}\``, 'm').test(readme)]).toEqual([name, true]);
  });

  test('--help states each default as the README table does', () => {
    const readme = read('README.md');
    for (const variable of [...CONFIG_VARIABLES, ENV_FILE_VARIABLE]) {
      const cell = new RegExp(`^\\| \`${variable.name}\`(?: \\(secret\\))? \\| (.*?) \\|`, 'm').exec(readme)?.[1];
      expect([variable.name, cell]).toEqual([variable.name, variable.default]);
    }
  });

  test('.env.example documents every variable and every _FILE form', () => {
    const example = read('.env.example');
    for (const name of KNOWN_VARIABLES) expect([name, new RegExp(`^#? ?${name}=`, 'm').test(example)]).toEqual([name, true]);
  });
});

test('maskUrl hides a Redis password and nothing else', () => {
  expect(maskUrl('redis://:p%40ss@redis:6379/0')).toBe('redis://:********@redis:6379/0');
  expect(maskUrl('rediss://user:pw@redis.example.com:6380')).toBe('rediss://user:********@redis.example.com:6380');
  expect(maskUrl('redis://redis:6379')).toBe('redis://redis:6379');
  expect(maskUrl('not a url with secret')).toBe('********');
});
