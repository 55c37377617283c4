import type { RedisTopology } from './types.ts';
import { parseUrl } from './values.ts';

export function isRedisUrl(text: string): boolean {
  const url = parseUrl(text);
  return url !== undefined && (url.protocol === 'redis:' || url.protocol === 'rediss:');
}

/** One of the three Redis deployments, from whichever of their variables is set (at most one). */
export function redisTopology(get: (name: string) => string | undefined, url: string | undefined, problems: string[]): RedisTopology | undefined {
  const clusterNodes = get('BFF_REDIS_CLUSTER_NODES');
  const sentinels = get('BFF_REDIS_SENTINELS');
  const sentinelName = get('BFF_REDIS_SENTINEL_NAME');
  const username = get('BFF_REDIS_USERNAME');
  const password = get('BFF_REDIS_PASSWORD');
  const chosen = [url !== undefined && 'BFF_REDIS_URL', clusterNodes !== undefined && 'BFF_REDIS_CLUSTER_NODES', sentinels !== undefined && 'BFF_REDIS_SENTINELS'].filter(Boolean);
  if (chosen.length > 1) {
    problems.push(`${chosen[1]}: set only one of BFF_REDIS_URL, BFF_REDIS_CLUSTER_NODES and BFF_REDIS_SENTINELS`);
    return undefined;
  }
  if (sentinels === undefined) {
    if (sentinelName !== undefined) problems.push('BFF_REDIS_SENTINEL_NAME: only applies with BFF_REDIS_SENTINELS');
    if (username !== undefined || password !== undefined) problems.push('BFF_REDIS_PASSWORD: only applies with BFF_REDIS_SENTINELS (put credentials into the redis:// URLs otherwise)');
  }
  if (url !== undefined) return { kind: 'single', url };
  if (clusterNodes !== undefined) {
    const nodes = clusterNodes
      .split(',')
      .map((n) => n.trim())
      .filter(Boolean);
    if (nodes.length === 0 || !nodes.every(isRedisUrl)) {
      problems.push('BFF_REDIS_CLUSTER_NODES: must be comma-separated redis:// or rediss:// URLs of cluster nodes (a few are enough to discover the rest)');
      return undefined;
    }
    return { kind: 'cluster', nodes };
  }
  if (sentinels !== undefined) {
    const parsed = sentinels.split(',').map((entry) => /^\s*([^:\s]+):(\d{1,5})\s*$/.exec(entry));
    if (parsed.length === 0 || parsed.some((m) => m === null)) {
      problems.push('BFF_REDIS_SENTINELS: must be comma-separated host:port pairs of Sentinel processes');
      return undefined;
    }
    if (sentinelName === undefined) {
      problems.push("BFF_REDIS_SENTINEL_NAME: required with BFF_REDIS_SENTINELS (the monitored master's name, e.g. mymaster)");
      return undefined;
    }
    return {
      kind: 'sentinel',
      name: sentinelName,
      sentinels: parsed.map((m) => ({ host: (m as RegExpExecArray)[1] as string, port: Number((m as RegExpExecArray)[2]) })),
      ...(username !== undefined ? { username } : {}),
      ...(password !== undefined ? { password } : {}),
    };
  }
  return undefined;
}
