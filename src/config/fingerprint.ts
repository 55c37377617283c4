import { createHash } from 'node:crypto';
import type { GatewayConfig } from './types.ts';

/**
 * A digest of everything the configuration holds (secrets included, which is
 * why only the digest ever leaves the process): two processes with the same
 * fingerprint loaded the same configuration. Sets are compared by content, in
 * any order; URLs by their text.
 */
export function configFingerprint(config: GatewayConfig): string {
  const text = JSON.stringify(config, (_key, value: unknown) => (value instanceof Set ? [...(value as Set<unknown>)].map(String).sort() : value));
  return createHash('sha256').update(text).digest('base64url');
}
