import { AggregatorRegistry, collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';

/** One metric as `Registry.getMetricsAsJSON()` gives it, and as it crosses the IPC channel. */
export interface MetricSnapshot {
  name: string;
  help: string;
  type: string;
  aggregator?: string;
  values: Array<{ value: number; labels: Record<string, string | number>; metricName?: string }>;
}

type Series = MetricSnapshot['values'][number];
/** Per metric name: the summed snapshot, and its series by labels (to add into them). */
/** prom-client's event-loop lag gauges (`_seconds`, `_min`, `_max`, `_mean`, `_stddev`, `_p50` …): averaged over the processes that report them. */
const EVENT_LOOP_LAG = 'nodejs_eventloop_lag';

type Sums = Map<string, { metric: MetricSnapshot; series: Map<string, Series> }>;

/**
 * The cluster primary's /metrics: every worker's registry, merged the way
 * prom-client's AggregatorRegistry merges a cluster (counters and histogram
 * buckets summed, gauges summed unless the metric says otherwise, e.g. event
 * loop lag averaged), plus the primary's own process metrics and its
 * bookkeeping of the workers.
 *
 * Two things prom-client's `clusterMetrics()` does not do: a worker that is
 * slow to answer is counted with its last answer instead of failing the
 * whole scrape, and a worker that exits keeps its counters and histograms in
 * the totals (its last answer is folded into a "retired" sum). Without that
 * the summed counters would drop whenever a worker is replaced, which
 * Prometheus reads as a reset and turns into a spike in rate().
 */
export class ClusterMetrics {
  readonly contentType: string;
  private readonly primary = new Registry();
  private readonly latest = new Map<number, MetricSnapshot[]>();
  /** Which scrape each worker's kept answer belongs to. */
  private readonly scrapeOf = new Map<number, number>();
  private readonly retired: Sums = new Map();
  private readonly restarts: Counter;

  constructor(liveWorkers: () => number) {
    this.contentType = this.primary.contentType;
    collectDefaultMetrics({ register: this.primary });
    new Gauge({
      name: 'bff_workers',
      help: 'Worker processes serving the main port right now (BFF_WORKERS); fewer than configured while one is being replaced.',
      registers: [this.primary],
      collect() {
        this.set(liveWorkers());
      },
    });
    this.restarts = new Counter({ name: 'bff_worker_restarts_total', help: 'Workers that exited unexpectedly and were replaced.', registers: [this.primary] });
  }

  onRestart(): void {
    this.restarts.inc();
  }

  /**
   * A worker's answer to scrape number `scrape` (anything else, e.g. no answer in time, keeps its previous one). An
   * answer to an earlier scrape that arrives after a later one's is older: kept, it would let a counter drop.
   */
  answered(workerId: number, answer: unknown, scrape: number): void {
    if (!isSnapshotList(answer) || (this.scrapeOf.get(workerId) ?? -1) > scrape) return;
    this.latest.set(workerId, answer);
    this.scrapeOf.set(workerId, scrape);
  }

  /** A worker exited: what it counted stays in the totals; its gauges go with it. */
  retire(workerId: number): void {
    const last = this.latest.get(workerId);
    this.latest.delete(workerId);
    this.scrapeOf.delete(workerId);
    if (last) for (const metric of last) if (metric.type === 'counter' || metric.type === 'histogram') addInto(this.retired, metric);
  }

  async exposition(): Promise<string> {
    // The primary's event loop idles: averaged in, its lag would hide the workers' (two workers' lag read as two thirds of it).
    const own = ((await this.primary.getMetricsAsJSON()) as unknown as MetricSnapshot[]).filter((metric) => !metric.name.startsWith(EVENT_LOOP_LAG));
    const sets: MetricSnapshot[][] = [...this.latest.values(), [...this.retired.values()].map((sum) => sum.metric), own];
    return AggregatorRegistry.aggregate(sets).metrics();
  }
}

/** Adds a counter's or histogram's series into the running sum of the same metric. */
function addInto(sums: Sums, metric: MetricSnapshot): void {
  let sum = sums.get(metric.name);
  if (!sum) sums.set(metric.name, (sum = { metric: { ...metric, values: [] }, series: new Map() }));
  for (const value of metric.values) {
    const key = seriesKey(value);
    const same = sum.series.get(key);
    if (same) {
      same.value += value.value;
    } else {
      const copy = { ...value, labels: { ...value.labels } };
      sum.series.set(key, copy);
      sum.metric.values.push(copy);
    }
  }
}

function seriesKey(value: Series): string {
  const labels = Object.keys(value.labels)
    .sort()
    .map((name) => `${name}=${String(value.labels[name])}`);
  return `${value.metricName ?? ''}{${labels.join(',')}}`;
}

/** The shape prom-client's aggregation needs; an answer that is not that is ignored rather than breaking the scrape. */
function isSnapshotList(answer: unknown): answer is MetricSnapshot[] {
  return (
    Array.isArray(answer) &&
    answer.every(
      (metric: unknown) =>
        typeof metric === 'object' &&
        metric !== null &&
        typeof (metric as MetricSnapshot).name === 'string' &&
        typeof (metric as MetricSnapshot).type === 'string' &&
        Array.isArray((metric as MetricSnapshot).values) &&
        (metric as MetricSnapshot).values.every(isSeries),
    )
  );
}

/**
 * Every series must have labels and a value: a worker's answer is summed, and summed again when the worker exits. The
 * value may be null: a NaN (a gauge not measured yet) crosses the IPC channel's JSON as null.
 */
function isSeries(value: unknown): value is Series {
  if (typeof value !== 'object' || value === null) return false;
  const { value: number, labels } = value as { value?: unknown; labels?: unknown };
  return (typeof number === 'number' || number === null) && typeof labels === 'object' && labels !== null;
}
