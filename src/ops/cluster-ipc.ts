import type { Worker } from 'node:cluster';

/**
 * The messages between the cluster primary and its workers. prom-client's own
 * cluster messages use `type` too, with a `prom-client:` prefix; ours are
 * `bff:` so that neither side mistakes the other's.
 */
export const WORKER_STARTED = 'bff:started';
/** The worker stops for a reason a replacement would hit again (the provider fails BFF_PROFILE): the primary stops too. */
export const WORKER_FATAL = 'bff:fatal';
/** Primary to worker: drain and exit, as SIGTERM does to a single process. */
export const STOP_WORKER = 'bff:stop';
const QUESTION = 'bff:question';
const ANSWER = 'bff:answer';

/** What the primary asks every worker on each probe or scrape. */
export type Question = 'readiness' | 'metrics';

interface QuestionMessage {
  type: typeof QUESTION;
  id: number;
  question: Question;
}
interface AnswerMessage {
  type: typeof ANSWER;
  id: number;
  answer: unknown;
}

export function messageType(message: unknown): string | undefined {
  return typeof message === 'object' && message !== null && 'type' in message && typeof message.type === 'string' ? message.type : undefined;
}

function isQuestion(message: unknown): message is QuestionMessage {
  return (
    messageType(message) === QUESTION &&
    typeof (message as QuestionMessage).id === 'number' &&
    ((message as QuestionMessage).question === 'readiness' || (message as QuestionMessage).question === 'metrics')
  );
}

function isAnswer(message: unknown): message is AnswerMessage {
  return messageType(message) === ANSWER && typeof (message as AnswerMessage).id === 'number';
}

interface Pending {
  workerId: number;
  resolve(answer: unknown): void;
  timer: NodeJS.Timeout;
}

/**
 * The primary's side: asks workers a question and collects their answers. A
 * worker that does not answer in time, or exits meanwhile, answers
 * `undefined`: one stuck worker must not hang a probe or a scrape.
 */
export class WorkerQuestions {
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;

  ask(worker: Worker, question: Question, timeoutMs: number): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.settle(id, undefined), timeoutMs);
      this.pending.set(id, { workerId: worker.id, resolve, timer });
      const message: QuestionMessage = { type: QUESTION, id, question };
      try {
        worker.send(message, (err: Error | null) => (err ? this.settle(id, undefined) : undefined));
      } catch {
        this.settle(id, undefined);
      }
    });
  }

  /** Every message from a worker passes here; true when it was an answer (settling a question only if asked of that worker). */
  receive(message: unknown, fromWorkerId: number): boolean {
    if (!isAnswer(message)) return false;
    if (this.pending.get(message.id)?.workerId === fromWorkerId) this.settle(message.id, message.answer);
    return true;
  }

  /** A worker exited: whatever it was asked is answered `undefined` now rather than at the timeout. */
  forget(workerId: number): void {
    for (const [id, pending] of this.pending) if (pending.workerId === workerId) this.settle(id, undefined);
  }

  private settle(id: number, answer: unknown): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    pending.resolve(answer);
  }
}

/** What a started worker answers with. */
export type Answers = { [Q in Question]: () => Promise<unknown> };

/** The worker's side of the channel. */
export class PrimaryLink {
  private serving: { answers: Answers; onStop: () => void } | undefined;

  /**
   * Listens from the start: a question before the gateway serves gets no
   * answer (the primary counts the worker as not ready), and a stop ends the
   * process at once (there is nothing to drain yet).
   */
  constructor() {
    process.on('message', (message: unknown) => {
      if (isQuestion(message)) {
        const answering = this.serving?.answers[message.question]() ?? Promise.resolve(undefined);
        answering.then(
          (answer) => this.send({ type: ANSWER, id: message.id, answer }),
          () => this.send({ type: ANSWER, id: message.id, answer: undefined }),
        );
      } else if (messageType(message) === STOP_WORKER) {
        if (this.serving) this.serving.onStop();
        else process.exit(0);
      }
    });
  }

  /**
   * The gateway listens: the primary may count this worker in; its questions get `answers`, its stop request `onStop`.
   * `fingerprint` (configFingerprint) lets the primary refuse a worker that loaded another configuration than it did.
   */
  started(answers: Answers, onStop: () => void, fingerprint: string): void {
    this.serving = { answers, onStop };
    this.send({ type: WORKER_STARTED, fingerprint });
  }

  fatal(): void {
    this.send({ type: WORKER_FATAL });
  }

  private send(message: object): void {
    // The primary may be gone (then cluster ends this process anyway); a message to nobody is not an error.
    if (process.connected) process.send?.(message, undefined, undefined, () => undefined);
  }
}
