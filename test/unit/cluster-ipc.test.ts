import type { Worker } from 'node:cluster';
import { describe, expect, test } from '@jest/globals';
import { WorkerQuestions } from '../../src/ops/cluster-ipc.ts';

/** A worker as the primary sees it: an id and a channel whose messages are kept for the test to answer. */
function fakeWorker(id: number): { worker: Worker; sent: Array<{ id: number }> } {
  const sent: Array<{ id: number }> = [];
  const worker = {
    id,
    send(message: { id: number }, callback?: (err: Error | null) => void): boolean {
      sent.push(message);
      callback?.(null);
      return true;
    },
  } as unknown as Worker;
  return { worker, sent };
}

describe('the primary asking its workers', () => {
  test("an answer settles a question only when it comes from the worker that was asked; another worker's is dropped", async () => {
    const questions = new WorkerQuestions();
    const one = fakeWorker(1);
    const asked = questions.ask(one.worker, 'metrics', 1000);
    const question = one.sent[0] as { id: number };
    expect(questions.receive({ type: 'bff:answer', id: question.id, answer: 'forged' }, 2)).toBe(true);
    expect(questions.receive({ type: 'bff:answer', id: question.id, answer: 'genuine' }, 1)).toBe(true);
    expect(await asked).toBe('genuine');
  });

  test('a worker that does not answer in time answers undefined', async () => {
    const questions = new WorkerQuestions();
    expect(await questions.ask(fakeWorker(1).worker, 'readiness', 20)).toBeUndefined();
  });
});
