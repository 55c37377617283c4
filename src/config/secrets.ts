import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Env } from './env-file.ts';

/** Variables whose value is a secret: each also accepts `NAME_FILE`, and none is ever echoed. */
export const SECRET_VARIABLES = ['BFF_CLIENT_SECRET', 'BFF_SESSION_SECRETS', 'BFF_REDIS_URL', 'BFF_REDIS_CLUSTER_NODES', 'BFF_REDIS_PASSWORD', 'BFF_CLIENT_PRIVATE_KEY'] as const;

/**
 * Replaces every `NAME_FILE` of a secret by the file's content under `NAME`
 * (one trailing newline trimmed, as editors and `kubectl create secret` add one).
 * Problems are returned, not thrown, so that they join the rest of the report.
 */
export function resolveSecretFiles(env: Env, cwd: string): { env: Env; problems: string[]; unreadable: Set<string> } {
  const out: Env = { ...env };
  const problems: string[] = [];
  /** Secrets already reported as an unreadable file: not to be reported again as missing. */
  const unreadable = new Set<string>();
  for (const name of SECRET_VARIABLES) {
    const path = env[`${name}_FILE`];
    if (path === undefined || path === '') continue;
    if (env[name] !== undefined && env[name] !== '') {
      problems.push(`${name}: set either ${name} or ${name}_FILE, not both`);
      continue;
    }
    try {
      out[name] = readFileSync(resolve(cwd, path), 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      const reason = err instanceof Error && 'code' in err ? String(err.code) : 'unreadable';
      problems.push(`${name}_FILE: cannot read ${path} (${reason})`);
      unreadable.add(name);
    }
  }
  return { env: out, problems, unreadable };
}

/**
 * A new entry for `BFF_SESSION_SECRETS` (`bff-gateway secret`): 48 random bytes, base64, so
 * 64 characters, well above the 32-byte minimum; printable, so it survives env files and YAML.
 */
export function newSessionSecret(): string {
  return randomBytes(48).toString('base64');
}
