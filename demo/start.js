// `npm run demo` (and `npm run idp`, with the argument `idp`) start here. Plain JavaScript on
// purpose: it must run on any Node.js to say which one is needed, before the TypeScript
// (demo/run.ts, demo/idp-server.ts) is loaded.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const [major, minor] = process.versions.node.split('.').map(Number);
const atLeast = (wantMajor, wantMinor) => major > wantMajor || (major === wantMajor && minor >= wantMinor);

if (!atLeast(22, 15)) {
  console.error(`bff-gateway needs Node.js 22.15 or newer (24 LTS recommended); this is Node.js ${process.versions.node}. Install a newer one (for example: nvm install 24) and run it again.`);
  process.exit(1);
}

const run = fileURLToPath(new URL(process.argv[2] === 'idp' ? './idp-server.ts' : './run.ts', import.meta.url));
if (atLeast(22, 18)) {
  // Type stripping is on by default from 22.18.
  await import(run);
} else {
  // 22.15-22.17 strip types only when asked; the demo then runs as a child with the flag.
  const child = spawn(process.execPath, ['--experimental-strip-types', '--disable-warning=ExperimentalWarning', run], { stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}
