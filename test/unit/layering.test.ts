import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from '@jest/globals';
import ts from 'typescript';

/**
 * The folders under src/ form layers: a folder may import from the folders
 * below it, never from one that (directly or through others) imports it. A
 * cycle means two concerns cannot be understood, tested or replaced apart, so
 * the build fails on one and names it.
 */

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

/** Folder → folder it imports → the first file-level import that makes the edge (for the message). */
type FolderGraph = Map<string, Map<string, string>>;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** Every module a file names in an `import` or `export … from` statement, `import type` included (a type still couples the folders). */
function importedModules(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const modules: string[] = [];
  for (const statement of source.statements) {
    if ((ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement)) && statement.moduleSpecifier && ts.isStringLiteral(statement.moduleSpecifier)) {
      modules.push(statement.moduleSpecifier.text);
    }
  }
  return modules;
}

/** The folder directly under src/ a path lies in; undefined for the files at src/'s top (the wiring, which may import anything). */
function folderOf(path: string): string | undefined {
  const parts = relative(SRC, path).split(sep);
  return parts.length > 1 && parts[0] !== '..' ? parts[0] : undefined;
}

function folderGraph(): FolderGraph {
  const graph: FolderGraph = new Map();
  for (const file of sourceFiles(SRC)) {
    const from = folderOf(file);
    if (from === undefined) continue;
    const edges = graph.get(from) ?? new Map<string, string>();
    graph.set(from, edges);
    for (const specifier of importedModules(file)) {
      if (!specifier.startsWith('.')) continue;
      const target = resolve(dirname(file), specifier);
      const to = folderOf(target);
      if (to === undefined || to === from || edges.has(to)) continue;
      edges.set(to, `src/${relative(SRC, file).split(sep).join('/')} imports src/${relative(SRC, target).split(sep).join('/')}`);
    }
  }
  return graph;
}

/** Each elementary cycle once, as the folders in order with the first repeated at the end, starting from its smallest name. */
function findCycles(graph: ReadonlyMap<string, ReadonlyMap<string, unknown>>): string[][] {
  const cycles = new Map<string, string[]>();
  const walk = (path: string[]): void => {
    const last = path[path.length - 1] as string;
    for (const next of graph.get(last)?.keys() ?? []) {
      const at = path.indexOf(next);
      if (at >= 0) {
        const loop = path.slice(at);
        const start = loop.indexOf([...loop].sort()[0] as string);
        const rotated = [...loop.slice(start), ...loop.slice(0, start)];
        cycles.set(rotated.join('>'), [...rotated, rotated[0] as string]);
      } else {
        walk([...path, next]);
      }
    }
  };
  for (const folder of graph.keys()) walk([folder]);
  return [...cycles.values()];
}

function describeCycle(cycle: string[], graph: FolderGraph): string {
  const steps = cycle.slice(1).map((to, i) => graph.get(cycle[i] as string)?.get(to) ?? '?');
  return `${cycle.join(' → ')}: ${steps.join('; ')}`;
}

describe('folder layering under src/', () => {
  test('the cycle finder finds a two-folder and a three-folder cycle, each once', () => {
    const graph = new Map([
      ['a', new Map([['b', '']])],
      [
        'b',
        new Map([
          ['a', ''],
          ['c', ''],
        ]),
      ],
      ['c', new Map([['d', '']])],
      ['d', new Map([['b', '']])],
      ['e', new Map([['a', '']])],
    ]);
    expect(
      findCycles(graph)
        .map((cycle) => cycle.join(' → '))
        .sort(),
    ).toEqual(['a → b → a', 'b → c → d → b']);
  });

  test('the import parser sees value imports and `import type`', () => {
    const graph = folderGraph();
    // Known edges of each kind, so that the next test cannot pass by reading nothing.
    expect(graph.get('ops')?.has('store')).toBe(true); // ops/check.ts: a value import only
    expect(graph.get('oidc')?.has('store')).toBe(true); // oidc/logout-token.ts: `import type` only
    expect([...graph.keys()].sort()).toEqual(expect.arrayContaining(['auth', 'config', 'http', 'oidc', 'ops', 'proxy', 'session', 'store', 'tokens']));
  });

  test('no folder imports, directly or through others, a folder that imports it', () => {
    const graph = folderGraph();
    expect(findCycles(graph).map((cycle) => describeCycle(cycle, graph))).toEqual([]);
  });
});

/** Files under src/ (relative, with forward slashes) that import `module` or a path inside it. */
function importersOf(module: string): string[] {
  return sourceFiles(SRC)
    .filter((file) => importedModules(file).some((specifier) => specifier === module || specifier.startsWith(`${module}/`)))
    .map((file) => relative(SRC, file).split(sep).join('/'))
    .sort();
}

describe('one seam per library', () => {
  test('openid-client is imported under src/oidc/ only', () => {
    const importers = importersOf('openid-client');
    expect(importers.length).toBeGreaterThan(0);
    expect(importers.filter((file) => !file.startsWith('oidc/'))).toEqual([]);
  });

  test("express-session's cookie signature is verified by cookie-signature, in the session reader only", () => {
    expect(importersOf('cookie-signature')).toEqual(['session/reader.ts']);
    const hmacUsers = sourceFiles(SRC).filter((file) => /createHmac\(/.test(readFileSync(file, 'utf8')));
    expect(hmacUsers.map((file) => relative(SRC, file))).toEqual([]);
  });

  test("connect-redis's key prefix is written in session/keys.ts only", () => {
    const holders = sourceFiles(SRC).filter((file) => /sess:/.test(readFileSync(file, 'utf8')));
    expect(holders.map((file) => relative(SRC, file).split(sep).join('/'))).toEqual(['session/keys.ts']);
  });
});
