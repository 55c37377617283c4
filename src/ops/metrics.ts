import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { LOGIN_FAILURES } from '../auth/error-page.ts';
import type { LoginFailureReason, LoginStats } from '../auth/router.ts';
import type { RefreshStats } from '../tokens/refresher.ts';

/** Seconds. Gateway work is milliseconds; upstream and IdP calls can take up to their 10–30 s timeouts. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Seconds. A healthy Redis answers in well under a millisecond; commands time out after 1 s. */
const REDIS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

const REFRESH_OUTCOMES = ['success', 'refused', 'error'] as const;

export interface MetricsOptions {
  /** The WebSockets open right now (read at scrape time). */
  activeWebSockets?: () => number;
}

/**
 * Every Prometheus metric of one gateway instance, in a registry of its own
 * (tests run several gateways in one process). The `observe*` methods and
 * the `*Stats` objects are the hooks the other modules call; nothing else in
 * the code base knows about prom-client.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly httpRequests: Counter<'route' | 'status_class'>;
  private readonly httpDuration: Histogram<'route'>;
  private readonly upstreamDuration: Histogram<'route'>;
  private readonly loginsStarted: Counter;
  private readonly loginsCompleted: Counter;
  private readonly loginsFailed: Counter<'reason'>;
  private readonly refreshes: Counter<'outcome'>;
  private readonly refreshesSaved: Counter;
  private readonly backchannelLogouts: Counter;
  private readonly backchannelSessions: Counter;
  private readonly redisDuration: Histogram<'command'>;
  private readonly redisErrors: Counter<'command'>;
  private readonly idpDuration: Histogram<'endpoint'>;
  private readonly idpErrors: Counter<'endpoint'>;

  readonly refreshStats: RefreshStats;
  readonly loginStats: LoginStats;

  constructor(options: MetricsOptions = {}) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.httpRequests = new Counter({
      name: 'bff_http_requests_total',
      help: 'Requests on the main port, by route (API route prefix, /auth endpoint, or "other") and status class ("aborted": the client left before a response).',
      labelNames: ['route', 'status_class'],
      registers,
    });
    this.httpDuration = new Histogram({
      name: 'bff_http_request_duration_seconds',
      help: 'Time from receiving a request to the end of its response (streams included), by route.',
      labelNames: ['route'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.upstreamDuration = new Histogram({
      name: 'bff_upstream_duration_seconds',
      help: 'Time from handing a request to its upstream to the end of the upstream response, by route prefix.',
      labelNames: ['route'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.loginsStarted = new Counter({ name: 'bff_logins_started_total', help: 'Logins sent to the OpenID provider.', registers });
    this.loginsCompleted = new Counter({ name: 'bff_logins_completed_total', help: 'Logins that created a session.', registers });
    this.loginsFailed = new Counter({
      name: 'bff_logins_failed_total',
      help: 'Login callbacks that created no session, by reason (the error page code; silent_login_miss: prompt=none found no IdP session; step_up_cancelled: the user cancelled a step-up at the IdP, session kept).',
      labelNames: ['reason'],
      registers,
    });
    this.refreshes = new Counter({
      name: 'bff_token_refreshes_total',
      help: 'Refresh-token grants this instance sent, by outcome: success, refused (the IdP refused the refresh; the session ended), error (IdP unreachable or failing; the session was kept).',
      labelNames: ['outcome'],
      registers,
    });
    this.refreshesSaved = new Counter({
      name: 'bff_token_refreshes_saved_total',
      help: 'Requests that needed a refresh and got the tokens of a refresh already under way (single-flight) instead of sending their own.',
      registers,
    });
    this.backchannelLogouts = new Counter({ name: 'bff_backchannel_logouts_total', help: 'Accepted back-channel logout tokens.', registers });
    this.backchannelSessions = new Counter({ name: 'bff_backchannel_logout_sessions_total', help: 'Sessions ended by back-channel logouts.', registers });
    this.redisDuration = new Histogram({ name: 'bff_redis_command_duration_seconds', help: 'Redis command latency, by command.', labelNames: ['command'], buckets: REDIS_BUCKETS, registers });
    this.redisErrors = new Counter({
      name: 'bff_redis_command_errors_total',
      help: 'Redis commands that failed or timed out (or were refused while disconnected), by command.',
      labelNames: ['command'],
      registers,
    });
    this.idpDuration = new Histogram({
      name: 'bff_idp_request_duration_seconds',
      help: 'Time to the response headers of requests to the OpenID provider, by endpoint (discovery, par, token, userinfo, revocation, jwks, ...).',
      labelNames: ['endpoint'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.idpErrors = new Counter({ name: 'bff_idp_request_errors_total', help: 'Requests to the OpenID provider that got no answer or a 5xx, by endpoint.', labelNames: ['endpoint'], registers });
    const activeWebSockets = options.activeWebSockets ?? (() => 0);
    new Gauge({
      name: 'bff_websockets_active',
      help: 'WebSockets proxied right now.',
      registers,
      collect() {
        this.set(activeWebSockets());
      },
    });

    // Zero series exist from the start, so that rate() and alerts see the first event.
    this.loginsFailed.inc({ reason: 'silent_login_miss' }, 0);
    this.loginsFailed.inc({ reason: 'step_up_cancelled' }, 0);
    for (const reason of Object.keys(LOGIN_FAILURES)) this.loginsFailed.inc({ reason }, 0);
    for (const outcome of REFRESH_OUTCOMES) this.refreshes.inc({ outcome }, 0);

    this.refreshStats = {
      onRefresh: (outcome) => this.refreshes.inc({ outcome }),
      onShared: () => this.refreshesSaved.inc(),
    };
    this.loginStats = {
      onStarted: () => this.loginsStarted.inc(),
      onCompleted: () => this.loginsCompleted.inc(),
      onFailed: (reason: LoginFailureReason) => this.loginsFailed.inc({ reason }),
    };
  }

  /** One finished request on the main port; `upstreamSeconds` when it reached an upstream. */
  observeRequest(route: string, statusClass: string, seconds: number, upstreamSeconds: number | undefined): void {
    this.httpRequests.inc({ route, status_class: statusClass });
    this.httpDuration.observe({ route }, seconds);
    if (upstreamSeconds !== undefined) this.upstreamDuration.observe({ route }, upstreamSeconds);
  }

  /** A back-channel logout token accepted, and how many sessions it ended. */
  onBackchannelLogout(sessionsEnded: number): void {
    this.backchannelLogouts.inc();
    this.backchannelSessions.inc(sessionsEnded);
  }

  observeRedis(command: string, seconds: number, failed: boolean): void {
    this.redisDuration.observe({ command }, seconds);
    if (failed) this.redisErrors.inc({ command });
  }

  observeIdp(endpoint: string, seconds: number, failed: boolean): void {
    this.idpDuration.observe({ endpoint }, seconds);
    if (failed) this.idpErrors.inc({ endpoint });
  }
}
