#!/usr/bin/env node
// The `bff-gateway` command (and `npm start`). Plain JavaScript on purpose: it must run on
// any Node.js to say what is missing, before the compiled gateway (dist/) is loaded.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 15)) {
  console.error(`bff-gateway needs Node.js 22.15 or newer (24 LTS recommended); this is Node.js ${process.versions.node}.`);
  process.exit(1);
}
/*
 * V8 lets the young generation grow to 64 MB semi-spaces (measured on a 24 GB machine), and a
 * proxy's steady load takes it there: about 60 MB more RSS than with 16 MB (where a bare Node proxy's
 * stays under the same load), for the same CPU per request (README, Performance). V8 reads the limit only at
 * start-up, so the process replaces itself once with the flag (same pid, same stdio), unless
 * the operator set the flag, or this platform cannot (Windows).
 */
const SEMI_SPACE_FLAG = '--max-semi-space-size';
const flagged = process.execArgv.some((arg) => arg.startsWith(SEMI_SPACE_FLAG)) || (process.env.NODE_OPTIONS ?? '').includes(SEMI_SPACE_FLAG);
// Only a gateway that serves lives long enough to grow its heap: --check, --help, --version and secret run as they are.
const serving = !process.argv.slice(2).some((arg) => arg.startsWith('-') || arg === 'secret');
if (serving && !flagged && typeof process.execve === 'function') {
  process.execve(process.execPath, [process.execPath, `${SEMI_SPACE_FLAG}=16`, ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], process.env);
}
const entry = fileURLToPath(new URL('../dist/index.js', import.meta.url));
if (!existsSync(entry)) {
  console.error('bff-gateway is not built yet (dist/index.js is missing): run npm run build first, or npm run demo to try it from source.');
  process.exit(1);
}
await import(entry);
