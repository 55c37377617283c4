import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIPv4, isIPv6 } from 'node:net';
import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { RateLimit } from '../config/types.ts';
import type { KeyValueStore } from '../store/kv.ts';
import { problems } from './problem-catalogue.ts';
import { type HttpProblem, sendProblem } from './problem.ts';

export interface RateLimiterOptions extends RateLimit {
  /** Names the limit in keys, logs and the problem's detail, e.g. `login`. */
  name: string;
  kv: KeyValueStore;
  logger: Logger;
  now?: () => number;
  /** Sends the refusal; default problem+json. Login navigations get a page instead. */
  refuse?: (req: IncomingMessage, res: ServerResponse, problem: HttpProblem) => void;
}

/**
 * Per client address, a sliding window approximated from two fixed windows
 * (the current count plus the previous window's count, weighted by how much
 * of it the sliding window still covers): no burst of twice the limit across a
 * window boundary, and only two small counters per address at any time, each
 * expiring after two windows. The counters live in the shared store, so the
 * limit holds across instances. Refused requests count too: a client that
 * keeps hammering stays refused until it slows down.
 */
export function rateLimit(options: RateLimiterOptions): RequestHandler {
  const { name, limit, windowMs, kv, logger } = options;
  const now = options.now ?? Date.now;
  const refuse = options.refuse ?? ((_req: IncomingMessage, res: ServerResponse, problem: HttpProblem) => sendProblem(res, problem));
  return async (req, res, next) => {
    const client = clientKey(req.ip);
    const at = now();
    const window = Math.floor(at / windowMs);
    const elapsed = (at - window * windowMs) / windowMs;
    // Two independent single-key commands: no cross-slot access on a Redis Cluster.
    const [current, previousText] = await Promise.all([kv.increment(rateLimitKey(name, client, window), 2 * windowMs), kv.get(rateLimitKey(name, client, window - 1))]);
    const previous = Number(previousText) || 0;
    const estimate = previous * (1 - elapsed) + current;
    if (estimate <= limit + EPSILON) return next();
    // Once per burst, not once per refused request: a flood must not flood the logs too.
    if (estimate - 1 <= limit + EPSILON) logger.warn({ limit: name, client, max: limit, windowSec: windowMs / 1000 }, 'rate limit reached');
    const retryAfter = retryAfterSeconds({ limit, windowMs }, current, previous, elapsed);
    refuse(req, res, problems.rateLimited(name, limit, windowMs, retryAfter));
  };
}

/** Weights are fractions: without a little slack, 60 × 0.3 + 12 would exceed a limit of 30. */
const EPSILON = 1e-9;

export function rateLimitKey(name: string, client: string, window: number): string {
  return `rl:${name}:${client}:${window}`;
}

/**
 * The address a limit counts against: IPv4 as is (IPv4-mapped IPv6 unwrapped),
 * IPv6 by its /64, since one host is routinely given a whole /64 and could
 * otherwise rotate through 2^64 addresses, each with a fresh budget and a fresh key.
 */
export function clientKey(ip: string | undefined): string {
  if (ip === undefined || ip === '') return 'unknown';
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  if (mapped?.[1] !== undefined) return mapped[1];
  if (isIPv4(ip)) return ip;
  if (!isIPv6(ip)) return 'unknown';
  return `${expandIPv6(ip).slice(0, 4).join(':')}::/64`;
}

/**
 * Whole seconds (at least 1) until one more request would be allowed,
 * assuming the client sends nothing meanwhile.
 */
export function retryAfterSeconds(rate: RateLimit, current: number, previous: number, elapsed: number): number {
  const { limit, windowMs } = rate;
  let waitMs: number;
  if (current + 1 <= limit && previous > 0) {
    // Still in this window: wait until enough of the previous window has slid out.
    const needed = 1 - (limit - current - 1) / previous;
    waitMs = Math.max(0, needed - elapsed) * windowMs;
  } else {
    // In the next window this window's count is the weighted one.
    const needed = current > 0 ? Math.max(0, 1 - (limit - 1) / current) : 0;
    waitMs = (1 - elapsed) * windowMs + needed * windowMs;
  }
  return Math.max(1, Math.ceil(waitMs / 1000));
}

function expandIPv6(ip: string): string[] {
  const withoutZone = ip.split('%')[0] ?? ip;
  const [head = '', tail] = withoutZone.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  // A trailing dotted quad stands for two groups.
  const last = right.length > 0 ? right : left;
  const quad = last[last.length - 1];
  if (quad !== undefined && quad.includes('.')) {
    const bytes = quad.split('.').map(Number);
    last.splice(last.length - 1, 1, (((bytes[0] ?? 0) << 8) | (bytes[1] ?? 0)).toString(16), (((bytes[2] ?? 0) << 8) | (bytes[3] ?? 0)).toString(16));
  }
  const missing = tail === undefined ? 0 : 8 - left.length - right.length;
  return [...left, ...Array.from({ length: missing }, () => '0'), ...right].map((group) => Number.parseInt(group, 16).toString(16));
}
