// `npm test` runs the browser suite when Chromium is installed, and says so loudly when it
// is not. Jest's exit code (or signal) is passed on unchanged, so a failure is never masked.
// In CI (CI=true) a missing Chromium is itself a failure: .ci/run installs it.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const CHROMIUM = '/usr/bin/chromium';
const root = fileURLToPath(new URL('../../', import.meta.url));

if (!existsSync(CHROMIUM)) {
  const ci = process.env.CI === 'true' || process.env.CI === '1';
  process.stderr.write(`\n*** end-to-end browser suite ${ci ? 'CANNOT RUN' : 'SKIPPED'}: ${CHROMIUM} not found ` + `(apt-get install -y chromium, then npm run test:e2e) ***\n\n`);
  process.exit(ci ? 1 : 0);
}

const jest = createRequire(import.meta.url).resolve('jest/bin/jest');
const child = spawn(process.execPath, [jest, '--config', 'jest.e2e.config.js', ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, NODE_OPTIONS: [process.env.NODE_OPTIONS, '--experimental-vm-modules'].filter(Boolean).join(' ') },
});
// Ctrl-C reaches jest through the terminal's process group; a SIGTERM from a supervisor (timeout) would not.
process.on('SIGTERM', () => child.kill('SIGTERM'));
child.on('error', (err) => {
  process.stderr.write(`could not start jest: ${err.message}\n`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  if (signal !== null) {
    process.stderr.write(`end-to-end suite killed by ${signal}\n`);
    process.exit(1);
  }
  process.exit(code ?? 1);
});
