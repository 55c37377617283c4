import { describe, expect, test } from '@jest/globals';
import { CRASH_WINDOW_MS, CrashPolicy } from '../../src/ops/crash-policy.ts';

describe('replacing crashed workers', () => {
  test('the first replacement is nearly immediate; the delay doubles with every crash within a minute, up to 5 s', () => {
    let now = 0;
    const policy = new CrashPolicy(8, () => now);
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      const decision = policy.crashed();
      if (!decision.replace) throw new Error('gave up too early');
      delays.push(decision.delayMs);
      now += 1000;
    }
    expect(delays).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000]);
  });

  test('more crashes in a minute than max(5, workers) ends it: the primary exits, saying how many', () => {
    let now = 0;
    const policy = new CrashPolicy(2, () => now);
    expect(policy.limit).toBe(5);
    for (let i = 0; i < 5; i++) {
      expect(policy.crashed().replace).toBe(true);
      now += 100;
    }
    expect(policy.crashed()).toEqual({ replace: false, crashes: 6, windowSec: 60 });
  });

  test('many workers tolerate as many crashes as there are workers (one event may hit them all)', () => {
    const policy = new CrashPolicy(16, () => 0);
    for (let i = 0; i < 16; i++) expect(policy.crashed().replace).toBe(true);
    expect(policy.crashed().replace).toBe(false);
  });

  test('crashes older than a minute are forgotten: an occasional crash is always replaced, quickly', () => {
    let now = 0;
    const policy = new CrashPolicy(2, () => now);
    for (let i = 0; i < 50; i++) {
      expect(policy.crashed()).toEqual({ replace: true, delayMs: 100 });
      now += CRASH_WINDOW_MS;
    }
  });
});
