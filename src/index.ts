import { ConfigError, loadConfig } from './config/load.ts';
import { startGateway } from './gateway.ts';

/** Exit code for an invalid configuration, distinct from a crash. */
const EXIT_CONFIG = 2;

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`bff-gateway: ${err.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    throw err;
  }
  const gateway = await startGateway(config);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) process.exit(1);
    stopping = true;
    process.stderr.write(`bff-gateway: ${signal} received, draining connections\n`);
    gateway.close(25_000).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`bff-gateway: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
