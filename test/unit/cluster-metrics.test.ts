import { describe, expect, test } from '@jest/globals';
import { ClusterMetrics } from '../../src/ops/cluster-metrics.ts';
import { GatewayMetrics } from '../../src/ops/metrics.ts';
import { parseExposition } from '../support/metrics.ts';

/** Two workers' registries, as they would answer the primary's scrape. */
async function snapshot(metrics: GatewayMetrics): Promise<unknown> {
  // Through JSON, as over the IPC channel.
  return JSON.parse(JSON.stringify(await metrics.registry.getMetricsAsJSON()));
}

function requests(metrics: GatewayMetrics, count: number, seconds = 0.02): void {
  for (let i = 0; i < count; i++) metrics.observeRequest('/api/echo', '2xx', seconds, seconds / 2);
}

describe('the cluster primary adds up its workers', () => {
  test('counters and histogram buckets are summed; gauges summed; the primary adds its own bookkeeping', async () => {
    const one = new GatewayMetrics({ activeWebSockets: () => 2 });
    const two = new GatewayMetrics({ activeWebSockets: () => 3 });
    requests(one, 7, 0.02);
    requests(two, 5, 3);
    const cluster = new ClusterMetrics(() => 2);
    cluster.answered(1, await snapshot(one), 1);
    cluster.answered(2, await snapshot(two), 2);
    const scrape = parseExposition(await cluster.exposition());
    expect(scrape.value('bff_http_requests_total', { route: '/api/echo', status_class: '2xx' })).toBe(12);
    expect(scrape.value('bff_http_request_duration_seconds_count', { route: '/api/echo' })).toBe(12);
    expect(scrape.value('bff_http_request_duration_seconds_bucket', { route: '/api/echo', le: '0.025' })).toBe(7);
    expect(scrape.value('bff_http_request_duration_seconds_bucket', { route: '/api/echo', le: '5' })).toBe(12);
    expect(scrape.value('bff_http_request_duration_seconds_sum', { route: '/api/echo' })).toBeCloseTo(7 * 0.02 + 5 * 3);
    expect(scrape.value('bff_websockets_active')).toBe(5);
    expect(scrape.value('bff_workers')).toBe(2);
    expect(scrape.value('bff_worker_restarts_total')).toBe(0);
    // The primary's own process metrics are in the sum as well (it has no bff_http_* series of its own).
    expect(scrape.value('process_resident_memory_bytes')).toBeGreaterThan(0);
  });

  test('a worker that exits keeps its counters in the totals (no drop that Prometheus would read as a reset); its gauges go', async () => {
    const one = new GatewayMetrics({ activeWebSockets: () => 4 });
    const two = new GatewayMetrics({ activeWebSockets: () => 1 });
    requests(one, 10);
    requests(two, 3);
    const cluster = new ClusterMetrics(() => 2);
    cluster.answered(1, await snapshot(one), 3);
    cluster.answered(2, await snapshot(two), 4);
    const before = parseExposition(await cluster.exposition()).value('bff_http_requests_total', { route: '/api/echo', status_class: '2xx' });
    expect(before).toBe(13);

    cluster.retire(1);
    cluster.onRestart();
    const replacement = new GatewayMetrics();
    requests(replacement, 2);
    cluster.answered(3, await snapshot(replacement), 5);
    const after = parseExposition(await cluster.exposition());
    expect(after.value('bff_http_requests_total', { route: '/api/echo', status_class: '2xx' })).toBe(15);
    expect(after.value('bff_http_request_duration_seconds_count', { route: '/api/echo' })).toBe(15);
    expect(after.value('bff_websockets_active')).toBe(1);
    expect(after.value('bff_worker_restarts_total')).toBe(1);

    // A second retirement adds to the first.
    cluster.retire(2);
    const later = parseExposition(await cluster.exposition());
    expect(later.value('bff_http_requests_total', { route: '/api/echo', status_class: '2xx' })).toBe(15);
  });

  test("event-loop lag is the workers' average: the idle primary's own does not dilute it", async () => {
    const lag = (value: number): unknown => [{ name: 'nodejs_eventloop_lag_seconds', type: 'gauge', help: 'lag', aggregator: 'average', values: [{ labels: {}, value }] }];
    const cluster = new ClusterMetrics(() => 2);
    cluster.answered(1, lag(0.3), 1);
    cluster.answered(2, lag(0.5), 1);
    expect(parseExposition(await cluster.exposition()).value('nodejs_eventloop_lag_seconds')).toBeCloseTo(0.4, 6);
  });

  test('of two scrapes at once, the earlier one answered last does not replace the later one (a counter must not drop)', async () => {
    const one = new GatewayMetrics();
    requests(one, 3);
    const early = await snapshot(one);
    requests(one, 2);
    const cluster = new ClusterMetrics(() => 1);
    cluster.answered(1, await snapshot(one), 2);
    cluster.answered(1, early, 1);
    expect(parseExposition(await cluster.exposition()).value('bff_http_requests_total', { route: '/api/echo', status_class: '2xx' })).toBe(5);
  });

  test('a worker that does not answer a scrape is counted with its previous answer; a malformed answer is ignored', async () => {
    const one = new GatewayMetrics();
    requests(one, 4);
    const cluster = new ClusterMetrics(() => 1);
    cluster.answered(1, await snapshot(one), 6);
    cluster.answered(1, undefined, 7);
    cluster.answered(1, [{ name: 42 }], 8);
    // A series without labels (or value) would break the sums, and the primary when the worker exits.
    cluster.answered(1, [{ name: 'bff_http_requests_total', type: 'counter', help: 'h', aggregator: 'sum', values: [{ value: 99 }] }], 9);
    cluster.answered(1, [{ name: 'bff_http_requests_total', type: 'counter', help: 'h', aggregator: 'sum', values: [{ labels: {}, value: 'many' }] }], 10);
    expect(parseExposition(await cluster.exposition()).value('bff_http_requests_total', { route: '/api/echo', status_class: '2xx' })).toBe(4);
    expect(() => cluster.retire(1)).not.toThrow();
    expect(parseExposition(await cluster.exposition()).value('bff_http_requests_total', { route: '/api/echo', status_class: '2xx' })).toBe(4);
  });
});
