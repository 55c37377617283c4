import type { ReadinessAnswer, ReadinessChecks } from './admin.ts';

/**
 * The cluster's /readyz from its workers' answers: ready only when every
 * configured worker answered ready (Redis answers, the provider's metadata
 * is loaded, not draining). A worker being replaced, or too slow to answer,
 * makes the instance not ready until it is back: the load balancer then
 * prefers instances at full strength. `store` and `idp` say whether every
 * worker that answered passes that check.
 */
export function clusterReadiness(answers: readonly unknown[], expected: number): ReadinessAnswer {
  const checks = answers.filter(isChecks);
  const ready = checks.filter((c) => c.store && c.idp && !c.draining).length;
  const ok = ready === expected;
  return {
    ready: ok,
    body: {
      status: ok ? 'ready' : 'not ready',
      checks: { store: checks.length > 0 && checks.every((c) => c.store), idp: checks.length > 0 && checks.every((c) => c.idp), workers: { ready, expected } },
    },
  };
}

function isChecks(answer: unknown): answer is ReadinessChecks {
  return (
    typeof answer === 'object' &&
    answer !== null &&
    typeof (answer as ReadinessChecks).store === 'boolean' &&
    typeof (answer as ReadinessChecks).idp === 'boolean' &&
    typeof (answer as ReadinessChecks).draining === 'boolean'
  );
}
