import { readFileSync } from 'node:fs';
import { CONFIG_VARIABLES, ENV_FILE_VARIABLE } from '../config/variables.ts';
import { SECRET_VARIABLES } from '../config/secrets.ts';

/**
 * The version in package.json, which sits two levels above this module both
 * in the source tree (src/ops/) and in the build (dist/ops/); the container
 * image ships it beside dist/.
 */
export function packageVersion(): string {
  const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
  const version = (JSON.parse(text) as { version?: unknown }).version;
  if (typeof version !== 'string') throw new Error('package.json has no version');
  return version;
}

/** `--help`: the commands and every variable with its default, from the one list the configuration is read by. */
export function helpText(): string {
  const secrets = new Set<string>(SECRET_VARIABLES);
  const rows = [...CONFIG_VARIABLES, ENV_FILE_VARIABLE].map((v) => ({ name: secrets.has(v.name) ? `${v.name} (secret)` : v.name, value: plain(v.default) }));
  const width = Math.max(...rows.map((row) => row.name.length));
  return [
    `bff-gateway ${packageVersion()}: a Backend-for-Frontend authentication gateway (OpenID Connect).`,
    '',
    'Usage: bff-gateway [option | secret]        (or node dist/index.js …)',
    '  (none)            start the gateway',
    '  --check           check the configuration, the routes file, the OpenID provider (discovery and the',
    '                    client credentials) and Redis, print a report; exit 0 when nothing is wrong, 1 otherwise',
    '  --check --strict  the same, and unknown BFF_* variables (usually typos) are failures, not warnings',
    '  secret            print a new random session secret (an entry for BFF_SESSION_SECRETS)',
    '  --help            this text',
    '  --version         the version',
    '',
    'Configuration: environment variables, optionally from an env file (BFF_ENV_FILE, or .env in the',
    'working directory); a variable in the environment wins over the file. Every secret also accepts',
    'NAME_FILE, a path whose content is the value. The README describes each variable.',
    '',
    `  ${'variable'.padEnd(width)}  default`,
    ...rows.map((row) => `  ${row.name.padEnd(width)}  ${row.value}`),
    '',
  ].join('\n');
}

/** The README's Markdown, as a terminal shows it. */
function plain(markdown: string): string {
  return markdown === '—' ? 'unset' : markdown.replace(/`/g, '');
}
