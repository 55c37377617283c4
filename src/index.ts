import { ConfigError, loadConfig } from './config/load.ts';
import { withEnvFile } from './config/env-file.ts';
import { newSessionSecret } from './config/secrets.ts';
import type { GatewayConfig } from './config/types.ts';
import { describeUnknown, unknownVariables } from './config/variables.ts';
import { startGateway } from './gateway.ts';
import { runCheck } from './ops/check.ts';
import { helpText, packageVersion } from './ops/help.ts';
import { createProcessLogger } from './ops/logger.ts';

/** Exit code for an invalid configuration, distinct from a crash. */
const EXIT_CONFIG = 2;
/** Past the shutdown timeout, closing Redis and the rest gets this long before the process exits anyway. */
const CLOSE_MARGIN_MS = 5_000;
const SIGNAL_NUMBERS: Record<string, number> = { SIGINT: 2, SIGTERM: 15 };

/** Command-line options; anything else is refused rather than ignored (a mistyped `--chek` must not start the gateway). */
const OPTIONS = new Set(['--check', '--strict', '--help', '-h', '--version', '-v']);
/** Commands, as the first argument. */
const COMMANDS = new Set(['secret']);

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] !== undefined && COMMANDS.has(args[0])) {
    if (args.length > 1) return usageError(`${args[0]} takes no options`);
    process.stdout.write(`${newSessionSecret()}\n`);
    return;
  }
  const unknown = args.find((arg) => !OPTIONS.has(arg));
  if (unknown !== undefined) return usageError(`unknown option ${unknown}`);
  // Neither needs any configuration: they come before it is read.
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(helpText());
    return;
  }
  if (args.includes('--version') || args.includes('-v')) {
    process.stdout.write(`${packageVersion()}\n`);
    return;
  }
  const strict = args.includes('--strict');
  if (args.includes('--check')) {
    process.exitCode = await runCheck({ env: process.env, cwd: process.cwd(), write: (line) => process.stdout.write(`${line}\n`), strict });
    return;
  }
  if (strict) return usageError('--strict goes with --check');

  let config: GatewayConfig;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`bff-gateway: ${err.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    throw err;
  }
  const logger = await createProcessLogger(config.logLevel);
  for (const unknown of unknownVariables(withEnvFile(process.env, process.cwd()).env)) logger.warn(describeUnknown(unknown));

  // A provider that fails BFF_PROFILE=fapi2 once it answers (it was down at start-up): drain and exit 1, so the orchestrator shows it.
  const onFatal = (err: Error): void => {
    process.exitCode = 1;
    logger.fatal({ code: 'code' in err ? err.code : undefined }, 'stopping: the OpenID provider does not meet the configured profile');
    stop('SIGTERM');
  };
  const gateway = await startGateway(config, { logger, onFatal });
  const graceMs = config.shutdownTimeoutSec * 1000;
  let stopping = false;
  function stop(signal: NodeJS.Signals): void {
    if (stopping) {
      // The operator insists (a second Ctrl-C, or the orchestrator's SIGKILL warning): no more waiting.
      logger.warn({ signal }, 'second signal: exiting at once');
      process.exit(128 + (SIGNAL_NUMBERS[signal] ?? 1));
    }
    stopping = true;
    logger.info({ signal, timeoutSec: config.shutdownTimeoutSec }, 'shutting down: not ready, no new connections, draining in-flight requests');
    const deadline = setTimeout(() => {
      logger.error('shutdown did not finish in time; exiting');
      process.exit(1);
    }, graceMs + CLOSE_MARGIN_MS);
    deadline.unref();
    gateway.close(graceMs).then(
      () => {
        logger.info('shutdown complete');
        process.exit(process.exitCode ?? 0);
      },
      (err: unknown) => {
        logger.error({ reason: err instanceof Error ? err.name : 'unknown' }, 'shutdown failed');
        process.exit(1);
      },
    );
  }
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

function usageError(problem: string): void {
  process.stderr.write(`bff-gateway: ${problem}; see bff-gateway --help\n`);
  process.exitCode = EXIT_CONFIG;
}

main().catch((err: unknown) => {
  process.stderr.write(`bff-gateway: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
