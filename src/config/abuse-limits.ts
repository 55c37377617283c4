import { parseDurationSeconds } from './duration.ts';
import type { ConnectionLimits, ProxyLimits, RateLimit, RateLimits } from './types.ts';

/** Node's own default; large enough for a browser carrying its usual cookies for the domain. */
const DEFAULT_MAX_HEADER_BYTES = 16 * 1024;
/** The usual request-line limit of proxies (nginx's 8k buffers); the IdP's callback URL is far shorter. */
const DEFAULT_MAX_URL_LENGTH = 8 * 1024;
const DEFAULT_LOGIN_RATE = '30/1m';
const DEFAULT_CALLBACK_RATE = '30/1m';
/** nginx's `client_body_buffer_size` is 8–16k; 64k holds nearly every JSON API call, so a slow client holds no upstream socket. */
const DEFAULT_PROXY_BUFFER_BYTES = 64 * 1024;
/** Enough for a browser's parallel uploads (Chrome opens at most 6 connections per host), few enough that one address cannot fill a route's pool. */
const DEFAULT_STREAMS_PER_CLIENT = 16;

export interface AbuseLimits {
  rateLimits: RateLimits;
  connectionLimits: ConnectionLimits;
  proxyLimits: ProxyLimits;
}

/**
 * The rate-limit and connection-limit variables. Problems are pushed
 * by variable name, like every other configuration problem.
 */
export function readAbuseLimits(get: (name: string) => string | undefined, problems: string[]): AbuseLimits {
  function rate(name: string, fallback: string): RateLimit | undefined {
    const text = get(name) ?? fallback;
    const parsed = parseRate(text);
    if (parsed === 'invalid') {
      problems.push(`${name}: must be <requests>/<window> such as 30/1m or 100/10s (per client address), or off`);
      return parseRate(fallback) as RateLimit;
    }
    return parsed === 'off' ? undefined : parsed;
  }
  function bytes(name: string, fallback: number, min: number, max: number): number {
    const text = get(name);
    if (text === undefined) return fallback;
    const value = /^\d+$/.test(text) ? Number(text) : NaN;
    if (!(value >= min && value <= max)) {
      problems.push(`${name}: must be a whole number of bytes between ${min} and ${max}`);
      return fallback;
    }
    return value;
  }
  function count(name: string, fallback: number, min: number, max: number): number {
    const text = get(name);
    if (text === undefined) return fallback;
    const value = /^\d+$/.test(text) ? Number(text) : NaN;
    if (!(value >= min && value <= max)) {
      problems.push(`${name}: must be a whole number between ${min} and ${max}`);
      return fallback;
    }
    return value;
  }
  function millis(name: string, fallbackSec: number): number {
    const text = get(name);
    if (text === undefined) return fallbackSec * 1000;
    const seconds = parseDurationSeconds(text);
    if (seconds === undefined || seconds < 1 || seconds > 3600) {
      problems.push(`${name}: must be a duration between 1s and 1h, such as 20s or 2m`);
      return fallbackSec * 1000;
    }
    return seconds * 1000;
  }

  const login = rate('BFF_RATE_LIMIT_LOGIN', DEFAULT_LOGIN_RATE);
  const callback = rate('BFF_RATE_LIMIT_CALLBACK', DEFAULT_CALLBACK_RATE);
  const maxHeaderBytes = bytes('BFF_MAX_HEADER_SIZE', DEFAULT_MAX_HEADER_BYTES, 4096, 1024 * 1024);
  const maxUrlLength = bytes('BFF_MAX_URL_LENGTH', DEFAULT_MAX_URL_LENGTH, 256, 1024 * 1024);
  // The request line counts towards Node's header limit: a longer URL limit would never answer 414.
  if (maxUrlLength >= maxHeaderBytes) problems.push('BFF_MAX_URL_LENGTH: must be smaller than BFF_MAX_HEADER_SIZE (the URL counts towards the header size)');
  return {
    rateLimits: { ...(login ? { login } : {}), ...(callback ? { callback } : {}) },
    connectionLimits: {
      maxHeaderBytes,
      maxUrlLength,
      headersTimeoutMs: millis('BFF_HEADERS_TIMEOUT', 20),
      bodyIdleTimeoutMs: millis('BFF_BODY_IDLE_TIMEOUT', 60),
      keepAliveTimeoutMs: millis('BFF_KEEPALIVE_TIMEOUT', 65),
    },
    proxyLimits: {
      bufferBytes: bytes('BFF_PROXY_BUFFER_BYTES', DEFAULT_PROXY_BUFFER_BYTES, 0, 16 * 1024 * 1024),
      maxStreamsPerClient: count('BFF_PROXY_MAX_STREAMS_PER_CLIENT', DEFAULT_STREAMS_PER_CLIENT, 1, 100_000),
    },
  };
}

/** `30/1m`, `100/10s`, `5/1h` (a bare number of seconds works too: `30/60`); `off` turns the limit off. */
export function parseRate(text: string): RateLimit | 'off' | 'invalid' {
  const trimmed = text.trim().toLowerCase();
  if (trimmed === 'off') return 'off';
  const match = /^(\d+)\s*\/\s*(\S+)$/.exec(trimmed);
  if (!match) return 'invalid';
  const limit = Number(match[1]);
  const seconds = parseDurationSeconds(match[2] ?? '');
  if (!Number.isSafeInteger(limit) || limit < 1 || seconds === undefined || seconds < 1 || seconds > 86_400) return 'invalid';
  return { limit, windowMs: seconds * 1000 };
}

/** `30/1m`, as `--check` prints it. */
export function describeRate(rate: RateLimit | undefined): string {
  return rate === undefined ? 'off' : `${rate.limit}/${rate.windowMs / 1000}s per client address`;
}
