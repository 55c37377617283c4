import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from '@jest/globals';

/**
 * docs/threat-model.md names, for each defence, the test that proves it as
 * `` `test/….test.ts` › "title" ``. This keeps those names true: the file exists and
 * holds a test (or test.each template) with exactly that title, not skipped.
 */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const DOC = 'docs/threat-model.md';

interface Reference {
  file: string;
  title: string;
  line: number;
}

const REFERENCE = /`(test\/[\w./-]+\.test\.ts)` › "([^"]+)"/g;

function references(markdown: string): Reference[] {
  const found: Reference[] = [];
  markdown.split('\n').forEach((text, index) => {
    for (const match of text.matchAll(REFERENCE)) found.push({ file: match[1] as string, title: match[2] as string, line: index + 1 });
  });
  return found;
}

/** Why a reference does not hold, or undefined when it does. */
function brokenReason(reference: Reference, read: (path: string) => string | undefined): string | undefined {
  const source = read(reference.file);
  if (source === undefined) return `${reference.file} does not exist`;
  // Titles are written unescaped in the document; in the source they are string literals.
  const unescaped = source.replace(/\\(['"`\\])/g, '$1');
  const quoted = ["'", '"', '`'].map((q) => `${q}${reference.title}${q}`);
  const call = new RegExp(`(?:\\b(?:test|it)\\(|\\)\\()\\s*$`);
  let at = -1;
  for (const literal of quoted) {
    for (let i = unescaped.indexOf(literal); i !== -1; i = unescaped.indexOf(literal, i + 1)) {
      if (call.test(unescaped.slice(Math.max(0, i - 200), i))) at = i;
    }
  }
  if (at === -1) return `${reference.file} has no test titled "${reference.title}"`;
  if (/\b(?:test|it|describe)\.(?:skip|todo)\(|\bx(?:test|it|describe)\(/.test(source)) return `${reference.file} skips tests`;
  return undefined;
}

function readFromRoot(path: string): string | undefined {
  const full = resolve(ROOT, path);
  return existsSync(full) ? readFileSync(full, 'utf8') : undefined;
}

describe('docs/threat-model.md', () => {
  const markdown = readFileSync(resolve(ROOT, DOC), 'utf8');
  const all = references(markdown);

  test('names enough tests to mean something, in every attacker section', () => {
    expect(all.length).toBeGreaterThan(60);
    const sections = markdown.split(/^### /m).slice(1);
    expect(sections.length).toBeGreaterThanOrEqual(8);
    for (const section of sections) expect([section.split('\n')[0], references(section).length > 0]).toEqual([section.split('\n')[0], true]);
  });

  test('every row of every defence table names at least one test', () => {
    const attackers = markdown.slice(markdown.indexOf('## Attackers'), markdown.indexOf('## Checklist'));
    const rows = attackers.split('\n').filter((line) => line.startsWith('| ') && !line.startsWith('| Threat |'));
    expect(rows.length).toBeGreaterThan(40);
    for (const row of rows) expect([row.slice(0, 80), references(row).length]).not.toEqual([row.slice(0, 80), 0]);
  });

  test('every named test file exists and holds a test with exactly the named title', () => {
    const broken = all.map((reference) => ({ reference, reason: brokenReason(reference, readFromRoot) })).filter((b) => b.reason !== undefined);
    expect(broken.map((b) => `line ${b.reference.line}: ${b.reason}`)).toEqual([]);
  });

  test('the checker catches a missing file, a wrong title, a title that is not a test and a skipped suite', () => {
    const source = ["test('real title', () => {});", "const note = 'mentioned title';", "test.each([1])('%s template', () => {});", "test('it\\'s escaped', () => {});"].join('\n');
    const read = (path: string) => (path === 'test/unit/a.test.ts' ? source : path === 'test/unit/skipped.test.ts' ? `${source}\ndescribe.skip('x', () => {});` : undefined);
    const reason = (file: string, title: string) => brokenReason({ file, title, line: 1 }, read);
    expect(reason('test/unit/a.test.ts', 'real title')).toBeUndefined();
    expect(reason('test/unit/a.test.ts', '%s template')).toBeUndefined();
    expect(reason('test/unit/a.test.ts', "it's escaped")).toBeUndefined();
    expect(reason('test/unit/missing.test.ts', 'real title')).toMatch(/does not exist/);
    expect(reason('test/unit/a.test.ts', 'real titl')).toMatch(/no test titled/);
    expect(reason('test/unit/a.test.ts', 'mentioned title')).toMatch(/no test titled/);
    expect(reason('test/unit/skipped.test.ts', 'real title')).toMatch(/skips tests/);
  });
});
