import type { Logger } from 'pino';
import type { GatewayConfig } from './config/types.ts';
import { startGateway, startWorkerGateway, type GatewayCore } from './gateway.ts';
import { checkReady } from './ops/admin.ts';
import { configFingerprint } from './config/fingerprint.ts';
import type { PrimaryLink } from './ops/cluster-ipc.ts';
import { exitCodeForSignal } from './ops/shutdown.ts';

/** Past the shutdown timeout, closing Redis and the rest gets this long before the process exits anyway. */
const CLOSE_MARGIN_MS = 5_000;

/**
 * Runs one gateway process until it is stopped: the whole gateway (main and
 * admin ports), or, with a link to the cluster primary, one worker serving
 * the main port. Both stop the same way: SIGTERM or SIGINT (or, for a
 * worker, the primary's request) drains in-flight requests and exits 0; a
 * second signal exits at once.
 */
export async function serveGateway(config: GatewayConfig, logger: Logger, primary?: PrimaryLink): Promise<void> {
  // A provider that fails BFF_PROFILE=fapi2 once it answers (it was down at start-up): drain and exit 1, so the orchestrator shows it.
  const onFatal = (err: Error): void => {
    process.exitCode = 1;
    logger.fatal({ code: 'code' in err ? err.code : undefined }, 'stopping: the OpenID provider does not meet the configured profile');
    // Before draining: the primary must not replace this worker, it must stop.
    primary?.fatal();
    stop('SIGTERM');
  };
  const gateway: GatewayCore = primary ? await startWorkerGateway(config, { logger, onFatal }) : await startGateway(config, { logger, onFatal });
  const graceMs = config.shutdownTimeoutSec * 1000;
  let stopping = false;
  let signalled = false;
  function stop(signal: NodeJS.Signals): void {
    if (signalled) {
      // The operator insists (a second Ctrl-C, or the orchestrator's SIGKILL warning): no more waiting.
      logger.warn({ signal }, 'second signal: exiting at once');
      process.exit(exitCodeForSignal(signal));
    }
    // Only a second signal cuts the drain short, not the primary's request: a Ctrl-C in a terminal reaches a
    // worker directly and through the primary, in either order.
    signalled = true;
    if (!stopping) drain({ signal });
  }
  function drain(cause: Record<string, unknown>): void {
    stopping = true;
    logger.info({ ...cause, timeoutSec: config.shutdownTimeoutSec }, 'shutting down: not ready, no new connections, draining in-flight requests');
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
  primary?.started(
    { readiness: () => checkReady(gateway.readiness), metrics: () => gateway.registry.getMetricsAsJSON() },
    () => (stopping ? undefined : drain({ cause: 'primary' })),
    configFingerprint(config),
  );
}
