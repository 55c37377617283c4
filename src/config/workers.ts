import { availableParallelism } from 'node:os';

/** More processes than this is a typo (or a machine where one gateway per core is not the bottleneck any more). */
export const MAX_WORKERS = 64;

/**
 * `BFF_WORKERS`: how many worker processes serve the main port. `1` (the
 * default) is one process and no cluster at all; `auto` is one per core
 * (`os.availableParallelism()`, capped at MAX_WORKERS). More than one needs a
 * shared session store: the in-memory store lives inside one process, so a
 * user signed in on one worker would be a stranger to the next. `auto` is
 * refused without Redis even on a one-core machine, so that a configuration
 * does not turn invalid when it moves to a bigger one.
 */
export function readWorkers(get: (name: string) => string | undefined, problems: string[], sharedStore: boolean, cores: number = availableParallelism()): number {
  const text = get('BFF_WORKERS');
  if (text === undefined) return 1;
  const auto = text.toLowerCase() === 'auto';
  const count = auto ? Math.min(Math.max(cores, 1), MAX_WORKERS) : /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!(count >= 1 && count <= MAX_WORKERS)) {
    problems.push(`BFF_WORKERS: must be a whole number from 1 to ${MAX_WORKERS}, or auto (one worker process per CPU core)`);
    return 1;
  }
  if ((auto || count > 1) && !sharedStore) {
    problems.push(
      'BFF_WORKERS: more than one worker needs Redis (BFF_REDIS_URL, BFF_REDIS_CLUSTER_NODES or BFF_REDIS_SENTINELS): sessions must be shared between workers, and without Redis they live in the memory of one process. Set BFF_REDIS_URL, or BFF_WORKERS=1',
    );
    return 1;
  }
  return count;
}
