import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from '@jest/globals';
import { KNOWN_VARIABLES } from '../../src/config/variables.ts';
import { helpText } from '../../src/ops/help.ts';

/**
 * The operator documents name variables, commands, scripts, files, metrics and log lines:
 * each of those names is checked here against the code, so that the documents cannot drift
 * (what no test here can check, such as a Docker run, is listed in the session notes).
 */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const read = (path: string): string => readFileSync(resolve(ROOT, path), 'utf8');
const DOCS = ['README.md', 'docs/deployment.md', 'docs/operations.md', 'docs/identity-providers.md'];
/** Misspellings the documents show on purpose, as what `--check` warns about. */
const DELIBERATE_TYPOS = new Set(['BFF_SCOPE', 'BFF_SESION_IDLE_TIMEOUT']);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}
const source = sourceFiles(resolve(ROOT, 'src'))
  .map((path) => readFileSync(path, 'utf8'))
  .join('\n');

describe.each(DOCS)('%s', (doc) => {
  const text = read(doc);

  test('every BFF_* variable it names is one the gateway reads', () => {
    const named = [...new Set([...text.matchAll(/\bBFF_[A-Z0-9_]*[A-Z0-9]\b/g)].map((m) => m[0]))].filter((name) => !DELIBERATE_TYPOS.has(name));
    expect(named.filter((name) => !KNOWN_VARIABLES.has(name))).toEqual([]);
  });

  test('every npm script it runs exists', () => {
    const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
    const named = [...text.matchAll(/\bnpm (?:run|run-script) ([a-z][\w:-]*)/g)].map((m) => m[1] as string);
    expect(named.filter((name) => scripts[name] === undefined)).toEqual([]);
  });

  test('every file it runs with node exists (dist/X.js is built from src/X.ts)', () => {
    const paths = [...text.matchAll(/\bnode ((?:dist|src|demo|bin)\/[\w./-]+\.(?:js|ts))/g)].map((m) => m[1] as string);
    const missing = paths.filter((path) => !existsSync(resolve(ROOT, path.startsWith('dist/') ? path.replace(/^dist\//, 'src/').replace(/\.js$/, '.ts') : path)));
    expect(missing).toEqual([]);
  });

  test('every bff-gateway option and command it shows is one --help lists', () => {
    const help = helpText();
    const used = [...text.matchAll(/\bbff-gateway((?: --?[a-z-]+| secret)+)/g)].flatMap((m) => (m[1] as string).trim().split(' '));
    expect(used.filter((option) => !help.includes(`  ${option}`) && !help.includes(` ${option} `))).toEqual([]);
  });
});

describe('docs/operations.md', () => {
  const text = read('docs/operations.md');

  test('every metric it names is registered by the gateway', () => {
    const named = [...new Set([...text.matchAll(/\bbff_[a-z_]+\b/g)].map((m) => m[0]))];
    expect(named.length).toBeGreaterThan(10);
    expect(named.filter((name) => !source.includes(`'${name}'`))).toEqual([]);
  });

  test('every log message it quotes is one the gateway writes', () => {
    const paragraph = text.slice(text.indexOf('Other lines record events'), text.indexOf('\n\n', text.indexOf('Other lines record events'))).replace(/\s*\n\s*/g, ' ');
    // Messages are lower-case phrases of several words; field names and values (`reason`, `http_500`, `outcome: error`) are not.
    const messages = [...paragraph.matchAll(/`([a-z][a-z -]*[a-z](?:[;:] [a-z ]+)?)`/g)].map((m) => m[1] as string).filter((phrase) => phrase.includes(' ') && !/^\w+: \w+$/.test(phrase));
    expect(messages.length).toBeGreaterThan(10);
    expect(messages.filter((message) => !source.includes(message))).toEqual([]);
  });
});
