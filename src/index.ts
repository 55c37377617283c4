import cluster from 'node:cluster';
import { ConfigError, loadConfig } from './config/load.ts';
import { withEnvFile } from './config/env-file.ts';
import { newSessionSecret } from './config/secrets.ts';
import type { GatewayConfig } from './config/types.ts';
import { describeUnknown, unknownVariables } from './config/variables.ts';
import { runCheck } from './ops/check.ts';
import { helpText, packageVersion } from './ops/help.ts';
import { PrimaryLink } from './ops/cluster-ipc.ts';
import { runPrimary } from './ops/cluster-primary.ts';
import { createProcessLogger } from './ops/logger.ts';
import { serveGateway } from './serve.ts';

/** Exit code for an invalid configuration, distinct from a crash. */
const EXIT_CONFIG = 2;

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
  if (config.workers > 1 && cluster.isWorker) {
    // Listening for the primary before anything slow, so that a stop during start-up is heard. Every line names its
    // worker (and pid, which the primary's lines about workers name too).
    const primary = new PrimaryLink();
    const logger = (await createProcessLogger(config.logLevel)).child({ worker: cluster.worker?.id, pid: process.pid });
    await serveGateway(config, logger, primary);
    return;
  }
  const logger = await createProcessLogger(config.logLevel);
  for (const unknown of unknownVariables(withEnvFile(process.env, process.cwd()).env)) logger.warn(describeUnknown(unknown));
  await (config.workers > 1 ? runPrimary(config, logger) : serveGateway(config, logger));
}

function usageError(problem: string): void {
  process.stderr.write(`bff-gateway: ${problem}; see bff-gateway --help\n`);
  process.exitCode = EXIT_CONFIG;
}

main().catch((err: unknown) => {
  process.stderr.write(`bff-gateway: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
