import { tracingChannel } from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';

/** What node-redis (≥ 5.12) puts into the context of its `node-redis:command` tracing channel. */
interface CommandContext {
  command?: string;
  clientId?: string;
  error?: unknown;
  /** Ours: set at `start` for the commands of the client we observe. */
  bffStartedAt?: number;
}

export type RedisCommandObserver = (command: string, seconds: number, failed: boolean) => void;

const commands = tracingChannel<unknown, CommandContext>('node-redis:command');

/**
 * Times every command of one Redis client through node-redis's diagnostics
 * channel: the library's own seam, which sees every command of the client
 * (session records, locks, the index), with no wrapper on the call path. The channel is process-wide,
 * so commands of other clients (another gateway in the same process) are
 * told apart by client id. Without one (a cluster or Sentinel, whose node
 * clients each have their own id) every client of the process is counted,
 * which is right when the process runs one gateway. Returns the unsubscribe
 * function.
 */
export function observeRedisCommands(clientId: string | undefined, observe: RedisCommandObserver): () => void {
  const finish = (ctx: CommandContext): void => {
    const startedAt = ctx.bffStartedAt;
    if (startedAt === undefined) return;
    ctx.bffStartedAt = undefined;
    observe(ctx.command ?? 'UNKNOWN', (performance.now() - startedAt) / 1000, ctx.error !== undefined);
  };
  const subscribers = {
    start(ctx: CommandContext) {
      if (clientId === undefined || ctx.clientId === clientId) ctx.bffStartedAt = performance.now();
    },
    // A synchronous throw ends at `end` with the error set; a promise settles at `asyncEnd`.
    end(ctx: CommandContext) {
      if (ctx.error !== undefined) finish(ctx);
    },
    asyncStart() {},
    asyncEnd: finish,
    error() {},
  };
  commands.subscribe(subscribers);
  return () => {
    commands.unsubscribe(subscribers);
  };
}
