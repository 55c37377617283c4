import { createClient } from 'redis';
import type { Logger } from 'pino';

/** Commands fail fast instead of queueing while Redis is away: a request must never hang on it. */
const COMMAND_TIMEOUT_MS = 1000;

function buildClient(url: string) {
  return createClient({
    url,
    disableOfflineQueue: true,
    commandOptions: { timeout: COMMAND_TIMEOUT_MS },
    socket: {
      connectTimeout: 2000,
      reconnectStrategy: (retries: number) => Math.min(100 * 2 ** Math.min(retries, 5), 2000),
    },
  });
}

export type RedisClient = ReturnType<typeof buildClient>;

/**
 * Creates the shared Redis client and starts connecting without waiting: the
 * gateway starts while Redis is down, answers 503 where it needs a session,
 * and recovers by itself when Redis returns.
 */
export function createRedisClient(url: string, logger: Logger): RedisClient {
  const client = buildClient(url);
  let healthy = true;
  client.on('error', (err: Error) => {
    // Reconnection errors repeat every retry; log the transition, not each one.
    if (healthy) logger.error({ err: { message: err.message } }, 'redis connection lost; retrying in the background');
    healthy = false;
  });
  client.on('ready', () => {
    if (!healthy) logger.info('redis connection restored');
    healthy = true;
  });
  client.connect().catch(() => {
    // The error listener above reports it; the reconnect strategy keeps trying.
  });
  return client;
}
