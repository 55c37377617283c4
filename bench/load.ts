import { createHistogram } from 'node:perf_hooks';
import autocannon from 'autocannon';

export interface LoadOptions {
  url: string;
  connections: number;
  /** Fixed duration; or `amount`, a fixed number of requests. */
  durationSec?: number;
  amount?: number;
  headers?: Record<string, string>;
  /** Per-request setup, e.g. to rotate session cookies. */
  setupRequest?: (request: autocannon.Request) => autocannon.Request;
  /** Hard stop however far the run got, so that a slow target cannot hold the benchmark. */
  maxSeconds: number;
}

export interface LoadResult {
  responses: number;
  elapsedSec: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  non2xx: number;
  /** Connection errors and timeouts: requests that got no response at all. */
  errors: number;
  /** True when `maxSeconds` cut the run short. */
  capped: boolean;
}

/**
 * One autocannon run (keep-alive, no pipelining). Latency comes from our own
 * histogram in microseconds: autocannon's is kept in whole milliseconds, too
 * coarse to judge a 1 ms target.
 */
export function runLoad(options: LoadOptions): Promise<LoadResult> {
  const histogram = createHistogram();
  let responses = 0;
  let capped = false;
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        connections: options.connections,
        pipelining: 1,
        ...(options.amount !== undefined ? { amount: options.amount } : { duration: options.durationSec ?? 10 }),
        ...(options.setupRequest ? { requests: [{ method: 'GET', headers: options.headers ?? {}, setupRequest: options.setupRequest }] } : { headers: options.headers ?? {} }),
      },
      (err: unknown, result: autocannon.Result) => {
        clearTimeout(cap);
        if (err) return reject(err instanceof Error ? err : new Error(String(err)));
        const elapsedSec = (performance.now() - started) / 1000;
        const ms = (percentile: number): number => histogram.percentile(percentile) / 1000;
        resolve({
          responses,
          elapsedSec,
          rps: responses / elapsedSec,
          p50Ms: ms(50),
          p99Ms: ms(99),
          p999Ms: ms(99.9),
          non2xx: result.non2xx,
          errors: result.errors,
          capped,
        });
      },
    );
    instance.on('response', (_client, _status, _bytes, responseTimeMs) => {
      responses += 1;
      histogram.record(Math.max(1, Math.round(responseTimeMs * 1000)));
    });
    const cap = setTimeout(() => {
      capped = true;
      instance.stop();
    }, options.maxSeconds * 1000);
  });
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
