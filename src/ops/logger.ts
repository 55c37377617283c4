import { pino, type Logger, type LevelWithSilent, type DestinationStream } from 'pino';

/**
 * Field paths that could ever carry a secret. Log calls in this code base only
 * pass safe fields; this list is the second line of defence for mistakes.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  '*.access_token',
  '*.refresh_token',
  '*.id_token',
  '*.accessToken',
  '*.refreshToken',
  '*.idToken',
  '*.code',
  '*.client_secret',
  '*.clientSecret',
  '*.logout_token',
  '*.sessionSecrets',
  '*.password',
];

export function createLogger(level: LevelWithSilent, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'bff-gateway' },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
