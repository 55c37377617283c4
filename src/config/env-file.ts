import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseEnv } from 'node:util';

export type Env = Record<string, string | undefined>;

/**
 * Returns the environment with the env file's values filled in underneath it:
 * a variable set in the real environment always wins over the file, so that an
 * orchestrator can override one value without editing the file.
 */
export function withEnvFile(env: Env, cwd: string): { env: Env; file?: string } {
  const named = env.BFF_ENV_FILE;
  const file = named ? resolve(cwd, named) : resolve(cwd, '.env');
  if (!named && !existsSync(file)) return { env };
  let parsed: Record<string, string>;
  try {
    parsed = parseEnv(readFileSync(file, 'utf8')) as Record<string, string>;
  } catch (err) {
    const reason = err instanceof Error && 'code' in err ? String(err.code) : 'unreadable';
    throw new EnvFileError(`BFF_ENV_FILE: cannot read env file ${file} (${reason})`);
  }
  return { env: { ...parsed, ...env }, file };
}

export class EnvFileError extends Error {
  readonly code = 'config_env_file';
}
