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
const entry = fileURLToPath(new URL('../dist/index.js', import.meta.url));
if (!existsSync(entry)) {
  console.error('bff-gateway is not built yet (dist/index.js is missing): run npm run build first, or npm run demo to try it from source.');
  process.exit(1);
}
await import(entry);
