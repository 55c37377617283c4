import { pino, type Logger, type LevelWithSilent, type DestinationStream } from 'pino';

/** Header names that carry credentials, wherever a headers object ends up in a log call. */
const SECRET_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key'];
const HEADER_HOLDERS = ['headers', 'req.headers', 'res.headers', 'request.headers', 'response.headers'];

/** Field names that hold a token, a code, a secret or key material, in either spelling. */
const SECRET_FIELDS = [
  'access_token',
  'accessToken',
  'refresh_token',
  'refreshToken',
  'id_token',
  'idToken',
  'logout_token',
  'logoutToken',
  'code',
  'code_verifier',
  'codeVerifier',
  'client_secret',
  'clientSecret',
  'clientPrivateKey',
  'client_assertion',
  'sessionSecrets',
  'sessionKey',
  'recordKey',
  'handle',
  'sessionHandle',
  'sessionID',
  'logoutNonce',
  'dpopKey',
  'privateKey',
  'password',
  'cookie',
  'authorization',
  'redisUrl',
];

/**
 * Field paths that could ever carry a secret: each secret field at the top
 * level and up to two objects deep, and the credential headers of any
 * headers object. Log calls in this code base pass only safe fields; this
 * list is the second line of defence, and it applies at every level,
 * trace included.
 */
export const REDACTED_PATHS = [
  ...HEADER_HOLDERS.flatMap((holder) => SECRET_HEADERS.map((header) => `${holder}["${header}"]`)),
  ...SECRET_FIELDS.flatMap((field) => [field, `*.${field}`, `*.*.${field}`]),
];

/**
 * The access log line is assembled from fixed fields (http-observer.ts: method, path without query,
 * status, route, durations, session, sub), so only a headers object could ever slip into it. The full
 * list above costs about 70 µs per line in wildcard matching, once per request; this one about 5 µs.
 */
export const ACCESS_LOG_REDACTED_PATHS = ['req.headers', 'res.headers'].flatMap((holder) => SECRET_HEADERS.map((header) => `${holder}["${header}"]`));

/** A child of `logger` for the per-request access log line, with the cheaper redaction list. */
export function accessLogger(logger: Logger): Logger {
  return logger.child({}, { redact: { paths: ACCESS_LOG_REDACTED_PATHS, censor: '[redacted]' } });
}

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

/**
 * The process logger: JSON lines on stdout, or human-readable lines when
 * stdout is a terminal and pino-pretty (a development dependency) is
 * installed. Redaction happens before either output.
 */
export async function createProcessLogger(level: LevelWithSilent): Promise<Logger> {
  if (!process.stdout.isTTY) return createLogger(level);
  try {
    const { default: pretty } = await import('pino-pretty');
    return createLogger(
      level,
      pretty({
        colorize: true,
        translateTime: 'SYS:HH:MM:ss',
        // One line per event: an access line reads "GET /api/echo 200 3 ms", other fields follow on the same line.
        singleLine: true,
        messageFormat: (log, messageKey) => terminalHeadline(log, messageKey),
        ignore: 'pid,hostname,service,req,res,reqId,responseTime',
      }),
    );
  } catch {
    // A production install has no pino-pretty: JSON is the fallback, never an error.
    return createLogger(level);
  }
}

/** The headline of a terminal log line: method, path, status and time for an access line, else the message. */
export function terminalHeadline(log: Record<string, unknown>, messageKey: string): string {
  const message = String(log[messageKey] ?? '');
  const req = log.req as { method?: unknown; path?: unknown } | undefined;
  const res = log.res as { statusCode?: unknown } | undefined;
  if (req?.method === undefined || res?.statusCode === undefined) return message;
  const time = typeof log.responseTime === 'number' ? ` ${log.responseTime} ms` : '';
  return `${String(req.method)} ${String(req.path)} ${String(res.statusCode)}${time}${message === 'request completed' ? '' : ` (${message})`}`;
}
