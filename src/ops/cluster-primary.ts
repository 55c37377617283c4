import cluster, { type Worker } from 'node:cluster';
import type http from 'node:http';
import type { Logger } from 'pino';
import { configFingerprint } from '../config/fingerprint.ts';
import type { GatewayConfig } from '../config/types.ts';
import { listen, urlOf } from '../http/listen.ts';
import { createAdminServer, type ReadinessAnswer, SHUTTING_DOWN } from './admin.ts';
import { messageType, STOP_WORKER, WORKER_FATAL, WORKER_STARTED, WorkerQuestions } from './cluster-ipc.ts';
import { ClusterMetrics } from './cluster-metrics.ts';
import { clusterReadiness } from './cluster-readiness.ts';
import { CrashPolicy } from './crash-policy.ts';
import { drainServer, exitCodeForSignal } from './shutdown.ts';

/** A worker answers readiness after at most its 500 ms Redis PING; one that takes longer counts as not ready. */
const READINESS_WAIT_MS = 1000;
/** A worker busy beyond this is counted with its previous metrics rather than failing the scrape. */
const METRICS_WAIT_MS = 2000;
/** The admin port outlives the workers (readiness says 503 throughout), then closes quickly. */
const ADMIN_CLOSE_MS = 1000;
/**
 * Past the shutdown timeout, the workers get this long to close Redis and the rest before they are killed:
 * a little longer than each worker gives itself (5 s) before it exits 1 on its own.
 */
const CLOSE_MARGIN_MS = 7_000;

interface WorkerState {
  worker: Worker;
  pid: number | undefined;
  /** Its gateway listens (until then it is not counted, and an exit is a start-up failure). */
  started: boolean;
  /** It is stopping for a reason a replacement would hit again. */
  fatal: boolean;
}

/**
 * `BFF_WORKERS=N`: this process serves no user traffic. It forks N workers,
 * each running the whole gateway on the main port (node:cluster shares the
 * listening socket and hands each new connection to the next worker), and
 * serves the admin port for all of them: readiness and metrics are asked of
 * every worker over IPC on each probe and scrape. It replaces a worker that
 * dies, stops them all on SIGTERM/SIGINT, and exits when they are gone.
 */
export async function runPrimary(config: GatewayConfig, logger: Logger): Promise<void> {
  const primary = new ClusterPrimary(config, logger);
  await primary.start();
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) {
      // The operator insists: no more waiting, for the workers either.
      logger.warn({ signal }, 'second signal: exiting at once');
      primary.killAll();
      process.exit(exitCodeForSignal(signal));
    }
    signalled = true;
    logger.info({ signal, timeoutSec: config.shutdownTimeoutSec, workers: primary.liveWorkers() }, 'shutting down: not ready, every worker draining its in-flight requests');
    primary.stop(0);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.exit(await primary.exited);
}

class ClusterPrimary {
  readonly exited: Promise<number>;
  private readonly config: GatewayConfig;
  private readonly logger: Logger;
  private readonly workers = new Map<number, WorkerState>();
  private readonly questions = new WorkerQuestions();
  private readonly metrics: ClusterMetrics;
  private readonly crashes: CrashPolicy;
  private readonly admin: http.Server;
  private readonly replacements = new Set<NodeJS.Timeout>();
  private adminUrl = '';
  private announced = false;
  private stopping: { code: number; clean: boolean; finishing: boolean } | undefined;
  private exit: (code: number) => void = () => undefined;
  private scrapes = 0;
  /** What every worker must have loaded too. */
  private readonly fingerprint: string;

  constructor(config: GatewayConfig, logger: Logger) {
    this.config = config;
    this.fingerprint = configFingerprint(config);
    this.logger = logger;
    this.crashes = new CrashPolicy(config.workers);
    this.metrics = new ClusterMetrics(() => this.liveWorkers());
    this.exited = new Promise((resolve) => (this.exit = resolve));
    this.admin = createAdminServer({
      live: () => this.liveWorkers() > 0,
      readiness: () => this.readiness(),
      metrics: () => this.exposition(),
      contentType: this.metrics.contentType,
    });
  }

  /** The admin port first: if it cannot listen, no worker is started. */
  async start(): Promise<void> {
    await listen(this.admin, this.config.adminPort, this.config.adminHost);
    this.adminUrl = urlOf(this.admin);
    for (let i = 0; i < this.config.workers; i++) this.fork();
  }

  liveWorkers(): number {
    return [...this.workers.values()].filter((state) => state.started).length;
  }

  /** Readiness 503 at once; every worker drains as a single process does on SIGTERM; `exited` resolves once they are all gone. */
  stop(code: number): void {
    if (this.stopping) return;
    this.stopping = { code, clean: true, finishing: false };
    for (const timer of this.replacements) clearTimeout(timer);
    this.replacements.clear();
    for (const { worker } of this.workers.values()) if (worker.isConnected()) worker.send({ type: STOP_WORKER }, () => undefined);
    const deadline = setTimeout(
      () => {
        this.logger.error({ workers: this.workers.size }, 'workers did not stop in time; exiting');
        this.killAll();
        this.exit(1);
      },
      this.config.shutdownTimeoutSec * 1000 + CLOSE_MARGIN_MS,
    );
    deadline.unref();
    this.finishIfDone();
  }

  killAll(): void {
    for (const { worker } of this.workers.values()) worker.process.kill('SIGKILL');
  }

  private fork(): void {
    const worker = cluster.fork();
    const state: WorkerState = { worker, pid: worker.process.pid, started: false, fatal: false };
    this.workers.set(worker.id, state);
    worker.on('message', (message: unknown) => this.onMessage(state, message));
    worker.on('exit', (code: number | null, signal: NodeJS.Signals | null) => this.onExit(state, code, signal));
    // A message that cannot be delivered (the worker is exiting) is not a reason for the primary to fall over.
    worker.on('error', (err: Error) => this.logger.debug({ worker: worker.id, reason: err.message }, 'worker channel error'));
  }

  private onMessage(state: WorkerState, message: unknown): void {
    if (this.questions.receive(message, state.worker.id)) return;
    const type = messageType(message);
    if (type === WORKER_FATAL) state.fatal = true;
    if (type !== WORKER_STARTED) return;
    if ((message as { fingerprint?: unknown }).fingerprint !== this.fingerprint) {
      // A replacement forked after a mounted secret, the env file or the routes file changed: serving beside the
      // others, it would decrypt, route and authorise differently. The whole process restarts on one configuration.
      state.fatal = true;
      this.logger.fatal(
        { worker: state.worker.id, pid: state.pid },
        'a worker loaded another configuration than the primary (an env file, a *_FILE secret or the routes file changed since start-up); stopping every worker: start the gateway again to use the new configuration',
      );
      this.stop(1);
      return;
    }
    state.started = true;
    // Asked to stop before it was listening for the primary (the first moments of its start-up): ask again.
    if (this.stopping) state.worker.send({ type: STOP_WORKER }, () => undefined);
    this.logger.info({ worker: state.worker.id, pid: state.pid }, 'worker started');
    if (!this.announced && this.liveWorkers() === this.config.workers) {
      this.announced = true;
      this.logger.info({ workers: this.config.workers, adminUrl: this.adminUrl }, 'workers started');
    }
  }

  private onExit(state: WorkerState, code: number | null, signal: NodeJS.Signals | null): void {
    const id = state.worker.id;
    this.workers.delete(id);
    this.questions.forget(id);
    this.metrics.retire(id);
    // `exitCode`, not `code`: the logger redacts every field named `code` (authorization codes).
    const facts = { worker: id, pid: state.pid, exitCode: code, signal };
    if (this.stopping) {
      if (code !== 0) this.stopping.clean = false;
      this.logger.info(facts, 'worker stopped');
      this.finishIfDone();
    } else if (state.fatal) {
      this.logger.fatal(facts, 'a worker stopped on a fatal error; stopping every worker');
      this.stop(1);
    } else if (!state.started && code !== null && code !== 0) {
      // Configuration, the routes file, a provider failing BFF_PROFILE=fapi2: a replacement would fail the same way.
      this.logger.fatal(facts, 'a worker failed to start (its error is above); stopping with its exit code');
      this.stop(code);
    } else {
      this.replace(facts, code === 0);
    }
  }

  /** `clean`: the worker exited 0 on its own (someone sent it SIGTERM), no crash; still replaced, and still paced. */
  private replace(facts: Record<string, unknown>, clean: boolean): void {
    const decision = this.crashes.crashed();
    if (!decision.replace) {
      this.logger.fatal({ ...facts, crashes: decision.crashes, windowSec: decision.windowSec, limit: this.crashes.limit }, 'workers keep crashing; stopping');
      this.stop(1);
      return;
    }
    if (clean) this.logger.warn({ ...facts, replaceInMs: decision.delayMs }, 'worker stopped on its own (exit code 0); starting a replacement');
    else this.logger.error({ ...facts, replaceInMs: decision.delayMs }, 'worker exited unexpectedly; starting a replacement');
    const timer = setTimeout(() => {
      this.replacements.delete(timer);
      if (this.stopping) return;
      this.fork();
      // Counted once replaced: a replacement that shutdown cancelled replaced nobody.
      this.metrics.onRestart();
    }, decision.delayMs);
    this.replacements.add(timer);
  }

  private finishIfDone(): void {
    const stopping = this.stopping;
    if (!stopping || stopping.finishing || this.workers.size > 0) return;
    stopping.finishing = true;
    void drainServer(this.admin, ADMIN_CLOSE_MS).then(() => {
      this.logger.info('shutdown complete');
      this.exit(stopping.code !== 0 ? stopping.code : stopping.clean ? 0 : 1);
    });
  }

  private started(): WorkerState[] {
    return [...this.workers.values()].filter((state) => state.started);
  }

  private async readiness(): Promise<ReadinessAnswer> {
    if (this.stopping) return SHUTTING_DOWN;
    const answers = await Promise.all(this.started().map((state) => this.questions.ask(state.worker, 'readiness', READINESS_WAIT_MS)));
    return this.stopping ? SHUTTING_DOWN : clusterReadiness(answers, this.config.workers);
  }

  private async exposition(): Promise<string> {
    // Two scrapes at once (two Prometheus servers): each answer is kept only if no later scrape's already was.
    const scrape = ++this.scrapes;
    await Promise.all(
      this.started().map(async ({ worker }) => {
        const answer = await this.questions.ask(worker, 'metrics', METRICS_WAIT_MS);
        if (this.workers.has(worker.id)) this.metrics.answered(worker.id, answer, scrape);
      }),
    );
    return this.metrics.exposition();
  }
}
