import { isIP } from 'node:net';
import { withEnvFile, type Env } from '../config/env-file.ts';

const DEFAULT_ADMIN_PORT = 9090;

/**
 * The liveness URL of the gateway this environment configures, for the
 * container's HEALTHCHECK: the admin port and host come from the real
 * environment or from `BFF_ENV_FILE`, exactly as the gateway reads them, so a
 * port set only in the env file is still the one probed. Nothing else of the
 * configuration is needed (a probe must not fail on, say, an unreachable IdP).
 */
export function healthcheckUrl(env: Env, cwd: string): string {
  const merged = withEnvFile(env, cwd).env;
  const portText = merged.BFF_ADMIN_PORT;
  const port = portText !== undefined && /^\d+$/.test(portText) ? Number(portText) : DEFAULT_ADMIN_PORT;
  return `http://${probeHost(merged.BFF_ADMIN_HOST)}:${port}/healthz`;
}

/** A wildcard listen address is probed on loopback; a named one where it listens. */
function probeHost(host: string | undefined): string {
  if (host === undefined || host === '' || host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return isIP(host) === 6 ? `[${host}]` : host;
}

/** Exit code of the probe: 0 when liveness answers 200 within `timeoutMs`, 1 otherwise. */
export async function probe(url: string, timeoutMs = 4000): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return res.ok ? 0 : 1;
  } catch {
    return 1;
  }
}
