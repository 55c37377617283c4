/** Crashes are counted over this window. */
export const CRASH_WINDOW_MS = 60_000;
/** The first replacement starts at once, nearly: a crash usually hits one worker, and its share of the traffic waits. */
const FIRST_DELAY_MS = 100;
/** Replacements of a worker that keeps dying wait longer each time, up to this. */
const MAX_DELAY_MS = 5_000;
/** At least this many crashes a minute are tolerated, however few the workers. */
const MIN_CRASH_LIMIT = 5;

export type CrashDecision = { replace: true; delayMs: number } | { replace: false; crashes: number; windowSec: number };

/**
 * What the cluster primary does when a worker dies unexpectedly: start a
 * replacement after a delay that doubles with every crash in the last minute,
 * and give up (the primary exits 1) once there have been more crashes in a
 * minute than `max(5, workers)`. A crash loop then ends in an exit the
 * orchestrator sees and reports, not in a process that spins forever.
 */
export class CrashPolicy {
  readonly limit: number;
  private readonly now: () => number;
  private crashes: number[] = [];

  constructor(workers: number, now: () => number = Date.now) {
    this.limit = Math.max(MIN_CRASH_LIMIT, workers);
    this.now = now;
  }

  crashed(): CrashDecision {
    const at = this.now();
    this.crashes = this.crashes.filter((time) => at - time < CRASH_WINDOW_MS);
    this.crashes.push(at);
    const count = this.crashes.length;
    if (count > this.limit) return { replace: false, crashes: count, windowSec: CRASH_WINDOW_MS / 1000 };
    return { replace: true, delayMs: Math.min(FIRST_DELAY_MS * 2 ** (count - 1), MAX_DELAY_MS) };
  }
}
