// The delivery loop of one integration: claims due deliveries from the store and sends each through
// the integration's compiled policy stack, the one synchronous calls go through (rate limit, bulkhead,
// breaker, per-attempt timeout, credentials), as one attempt: its schedule makes the retries. It claims no more than
// the rate limiter has tokens for and the bulkhead has slots for, nothing while the circuit is open and
// one probe while it is half-open, so a recovered vendor is drained at its quota, not stampeded.
// Each turn ends in a settlement the schedule decides; the store records it with the history.
import { isBrokenCircuitError, isBulkheadRejectedError, CircuitState } from 'cockatiel';
import type { IncomingHttpHeaders } from 'node:http';
import { request } from 'undici';
import { HOP_BY_HOP_HEADERS } from '../api/hop-by-hop.ts';
import { LeaseLostError } from '../delivery/errors.ts';
import { DeliverySchedule, type ScheduleSpec, type TurnReport } from '../delivery/schedule.ts';
import { RESPONSE_BODY_LIMIT, type Delivery, type DeliveryStore, type Settlement, type StoredResponse } from '../delivery/store.ts';
import { deliveryView } from '../delivery/view.ts';
import { backoffDelay } from '../policy/backoff.ts';
import type { Call } from '../policy/call.ts';
import { CallCancelledError, DeadlineExceededError, RateLimitedError, UpstreamFailure } from '../policy/errors.ts';
import type { Logger } from '../runtime/logger.ts';
import type { IntegrationTable } from './config.ts';
import type { DeliveryMetrics, DeliveryResult } from './delivery-metrics.ts';
import type { Integration } from './integration.ts';
import { statusClass } from './metrics.ts';
import { SIDECAR_DEFAULTS } from './options.ts';
import type { Outbound } from './upstream-response.ts';

/** Longest sleep between two looks at the store: another sidecar may have added work, or a lease passed. */
const POLL_MS = 1000;
/** A store that failed is tried again after this long. */
const STORE_RETRY_MS = 1000;
/** How often the gauges are read from the store, and callbacks looked for. */
const HOUSEKEEPING_MS = 1000;
/** How often ended deliveries past `retain` lose their bodies. */
const COMPACT_MS = 60_000;
/** A lease outlives the call it covers (timeouts.total aborts it) by this much. */
const LEASE_MARGIN_MS = 5000;
/** A full bulkhead, or credentials that cannot be read: look again after this long. */
const BLOCKED_RETRY_MS = 250;
/** One callback POST may take this long. */
const CALLBACK_TIMEOUT_MS = 10_000;
const CALLBACK_BATCH = 8;

export interface WorkerContext {
  readonly store: () => Promise<DeliveryStore>;
  /** This sidecar, as the owner of its claims and in the history. */
  readonly owner: string;
  readonly table: IntegrationTable;
  readonly metrics: DeliveryMetrics;
  readonly logger: Logger;
  readonly random: () => number;
}

interface Turn {
  call: Call | undefined;
  readonly done: Promise<void>;
}

const HOP_BY_HOP: ReadonlySet<string> = new Set(HOP_BY_HOP_HEADERS);

export class DeliveryWorker {
  readonly name: string;
  private readonly context: WorkerContext;
  private readonly turns = new Map<string, Turn>();
  /** Callback POSTs in flight by delivery id: they run beside the deliveries, so a slow app endpoint holds up none. */
  private readonly callbacks = new Map<string, Promise<void>>();
  /** Ends the callback POSTs still in flight when the worker stops. */
  private readonly stopCallbacks = new AbortController();
  private readonly schedules = new WeakMap<Integration, DeliverySchedule>();
  private stopped = false;
  private wakeUp: (() => void) | undefined;
  private woken = false;
  private storeFailing = false;
  private housekeptAt = 0;
  private compactedAt = 0;
  private readonly loop: Promise<void>;

  constructor(name: string, context: WorkerContext) {
    this.name = name;
    this.context = context;
    this.loop = this.run();
  }

  /** Look at the store now: a delivery was submitted, or a turn ended. */
  wake(): void {
    if (this.wakeUp) this.wakeUp();
    // Mid-tick: the coming sleep is skipped, as what woke us may not have been seen.
    else this.woken = true;
  }

  /**
   * Stops claiming, waits (at most `timeoutMs`) for the turns in flight, then cancels the rest: they
   * are handed back to the store, untried or with the attempt that was cut short, for whoever is next.
   */
  async stop(timeoutMs: number): Promise<void> {
    this.stopped = true;
    this.wake();
    await this.loop;
    // A callback in flight is not waited for: it is ended, keeps its lease, and whoever comes next
    // POSTs it again. Ended before the store closes, it records nothing there.
    this.stopCallbacks.abort();
    await Promise.all(this.callbacks.values());
    if (this.turns.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const turns = Promise.all([...this.turns.values()].map((t) => t.done));
    await Promise.race([turns, new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
    for (const turn of this.turns.values()) turn.call?.abort(new CallCancelledError('the sidecar is shutting down'));
    await turns;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let waitMs: number;
      try {
        waitMs = await this.tick();
        if (this.storeFailing) this.context.logger.info({ integration: this.name }, 'delivery store available again');
        this.storeFailing = false;
      } catch (error) {
        if (!this.storeFailing) this.context.logger.error({ integration: this.name, err: error }, 'delivery store unavailable; retrying');
        this.storeFailing = true;
        waitMs = STORE_RETRY_MS;
      }
      if (this.stopped) break;
      await this.sleep(waitMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    const skip = this.woken;
    this.woken = false;
    if (ms <= 0 || skip) return new Promise((resolve) => setImmediate(resolve));
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeUp = done;
    });
  }

  /** One look at the store; returns how long to sleep before the next. */
  private async tick(): Promise<number> {
    const integration = this.context.table.get(this.name);
    if (!integration?.spec.delivery) return POLL_MS;
    const store = await this.context.store();
    const now = Date.now();
    if (now - this.housekeptAt >= HOUSEKEEPING_MS) await this.housekeeping(store, integration, now);

    const policy = integration.policy;
    // While the circuit is open nothing is claimed, so a delivery that expires meanwhile ends dead
    // (expired) at the next probe, at most halfOpenAfter late.
    // Held open (circuitBreaker.forceOpen): no probe either, until a reload builds a policy without it.
    if (policy.breaker.state === CircuitState.Isolated) return POLL_MS;
    const openForMs = policy.msUntilHalfOpen();
    if (openForMs !== undefined && openForMs > 0) return openForMs;
    let limit = (integration.spec.bulkhead?.maxConcurrent ?? SIDECAR_DEFAULTS.deliveryConcurrency) - this.turns.size;
    // Open with its time up, or half-open: one probe, and nothing beside it.
    if (policy.breaker.state !== CircuitState.Closed) limit = this.turns.size === 0 ? 1 : 0;
    const rate = integration.spec.rateLimit;
    if (policy.limiter && rate) {
      const tokens = policy.limiter.available;
      if (tokens < 1) return Math.ceil(((1 - tokens) * rate.perMs) / rate.requests);
      limit = Math.min(limit, Math.floor(tokens));
    }
    if (limit <= 0) return POLL_MS;
    // The lease counts from now, not from before the housekeeping.
    const claimed = await store.claim(this.name, {
      owner: this.context.owner,
      limit,
      leaseMs: integration.spec.timeouts.totalMs + LEASE_MARGIN_MS,
      now: Date.now(),
    });
    // A lease of ours that passed while its turn still runs is ours again: that turn goes on and
    // settles it. A second turn would send the request twice.
    for (const delivery of claimed) if (!this.turns.has(delivery.id)) this.start(store, integration, delivery);
    if (claimed.length === limit) return 0;
    const next = await store.nextDueAt(this.name, Date.now());
    return next === undefined ? POLL_MS : Math.min(POLL_MS, Math.max(0, next - Date.now()));
  }

  private start(store: DeliveryStore, integration: Integration, delivery: Delivery): void {
    const turn: Turn = {
      call: undefined,
      done: Promise.resolve().then(() => this.turn(store, integration, delivery, turn)),
    };
    this.turns.set(delivery.id, turn);
    void turn.done
      .catch((error: unknown) => this.context.logger.error({ integration: this.name, delivery: delivery.id, err: error }, 'delivery turn failed'))
      .finally(() => {
        this.turns.delete(delivery.id);
        this.wake();
      });
  }

  private schedule(integration: Integration): DeliverySchedule {
    let schedule = this.schedules.get(integration);
    if (schedule === undefined) {
      schedule = new DeliverySchedule(integration.spec as ScheduleSpec, this.context.random);
      this.schedules.set(integration, schedule);
    }
    return schedule;
  }

  private async turn(store: DeliveryStore, integration: Integration, delivery: Delivery, turn: Turn): Promise<void> {
    const schedule = this.schedule(integration);
    const startedAt = Date.now();
    if (schedule.expired(delivery, startedAt)) {
      const maxAge = integration.spec.delivery!.maxAgeMs;
      await this.settle(store, delivery, { at: startedAt, next: { state: 'dead', reason: 'expired', error: `not delivered within maxAge (${maxAge}ms)` } });
      return;
    }
    let report: TurnReport;
    let response: StoredResponse | undefined;
    const started = performance.now();
    if (!integration.secretsAvailable) {
      report = { kind: 'not-sent', reason: 'credentials_unavailable', retryInMs: BLOCKED_RETRY_MS };
    } else {
      const call = integration.policy.execute(outbound(integration, delivery));
      turn.call = call;
      try {
        const answer = await call.answer;
        // The call's deadline bounds the wait for the answer, not the body after it. Read past it, the
        // body could outlast the lease (the deadline and a margin), and another holder send the
        // request again: what came by then is kept, marked truncated.
        const { body, truncated } = await answer.collect(RESPONSE_BODY_LIMIT, started + integration.spec.timeouts.totalMs - performance.now());
        response = { status: answer.statusCode, headers: flatHeaders(answer.headers), body, truncated };
        report = { kind: 'response', status: answer.statusCode, retryAfter: answer.retryAfter };
      } catch (error) {
        report = this.failureReport(error, call);
      }
    }
    const durationMs = performance.now() - started;
    const at = Date.now();
    const next = schedule.next(delivery, report, at);
    const attempt = attemptOutcome(report);
    if (attempt !== undefined) this.context.metrics.attempts.inc({ integration: this.name, outcome: attempt.metric });
    await this.settle(store, delivery, {
      at,
      ...(attempt !== undefined && { attempt: { outcome: attempt.history, durationMs } }),
      next,
      ...(response && { response }),
    });
  }

  private failureReport(error: unknown, call: Call): TurnReport {
    if (error instanceof RateLimitedError) return { kind: 'not-sent', reason: 'rate_limited', retryInMs: error.retryAfterMs };
    if (isBulkheadRejectedError(error)) return { kind: 'not-sent', reason: 'bulkhead_full', retryInMs: BLOCKED_RETRY_MS };
    // Due again at once: this worker claims nothing while its circuit is open, and another sidecar on
    // a shared store (or the next one on this file) judges the vendor by its own breaker.
    if (isBrokenCircuitError(error)) return { kind: 'not-sent', reason: 'circuit_open', retryInMs: 0 };
    if (error instanceof UpstreamFailure) return { kind: 'failure', failure: error.kind, retryable: error.retryable, message: error.message };
    // The deadline or a shutdown cut the turn short: an attempt in flight may have reached the vendor
    // (its idempotency key makes the next one safe); before any, nothing was sent.
    if (error instanceof DeadlineExceededError || error instanceof CallCancelledError) {
      if (call.attempts > 0) return { kind: 'failure', failure: 'timeout', retryable: true, message: error.message };
      return { kind: 'not-sent', reason: error instanceof CallCancelledError ? 'shutdown' : 'deadline_exceeded', retryInMs: 0 };
    }
    this.context.logger.error({ integration: this.name, err: error }, 'unexpected failure of a delivery attempt');
    return { kind: 'not-sent', reason: 'internal_error', retryInMs: STORE_RETRY_MS };
  }

  private async settle(store: DeliveryStore, delivery: Delivery, settlement: Settlement): Promise<void> {
    let ended: Delivery;
    try {
      ended = await store.settle(delivery.id, this.context.owner, settlement);
    } catch (error) {
      if (!(error instanceof LeaseLostError)) throw error;
      this.context.logger.warn({ integration: this.name, delivery: delivery.id }, 'delivery lease lost; its new holder records the outcome');
      return;
    }
    const next = settlement.next;
    if (next.state === 'queued') return;
    const result: DeliveryResult = next.state === 'dead' && next.reason === 'expired' ? 'expired' : next.state;
    this.context.metrics.deliveries.inc({ integration: this.name, result });
    this.context.logger.info(
      { integration: this.name, delivery: ended.id, state: ended.state, result, attempts: ended.attempts, status: ended.response?.status },
      'delivery ended',
    );
  }

  private async housekeeping(store: DeliveryStore, integration: Integration, now: number): Promise<void> {
    this.housekeptAt = now;
    const stats = await store.stats(this.name);
    const labels = { integration: this.name };
    this.context.metrics.backlog.set(labels, stats.backlog);
    this.context.metrics.deadLetters.set(labels, stats.dead);
    this.context.metrics.oldestSeconds.set(labels, stats.oldestCreatedAt === undefined ? 0 : Math.max(0, (now - stats.oldestCreatedAt) / 1000));
    const spec = integration.spec.delivery!;
    if (now - this.compactedAt >= COMPACT_MS) {
      this.compactedAt = now;
      await store.compact(this.name, now - spec.retainMs);
    }
    const limit = CALLBACK_BATCH - this.callbacks.size;
    if (spec.callbackUrl === undefined || limit <= 0) return;
    const due = await store.claimCallbacks(this.name, { owner: this.context.owner, limit, leaseMs: CALLBACK_TIMEOUT_MS + LEASE_MARGIN_MS, now: Date.now() });
    for (const delivery of due) {
      // Its lease passed while our POST of it still runs: as for turns, that POST goes on; a second
      // would tell the app twice at once.
      if (this.callbacks.has(delivery.id)) continue;
      const callback = this.callBack(store, integration, delivery)
        .catch((error: unknown) => this.context.logger.error({ integration: this.name, delivery: delivery.id, err: error }, 'delivery callback could not be recorded; it is POSTed again after its lease'))
        .finally(() => this.callbacks.delete(delivery.id));
      this.callbacks.set(delivery.id, callback);
    }
  }

  /** POSTs the outcome to the app; retried with the integration's backoff until 2xx or maxAge after the end. */
  private async callBack(store: DeliveryStore, integration: Integration, delivery: Delivery): Promise<void> {
    const started = performance.now();
    let outcome: string;
    let ok = false;
    try {
      const res = await request(delivery.callbackUrl!, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(deliveryView(delivery)),
        headersTimeout: CALLBACK_TIMEOUT_MS,
        bodyTimeout: CALLBACK_TIMEOUT_MS,
        signal: this.stopCallbacks.signal,
      });
      await res.body.dump();
      outcome = String(res.statusCode);
      ok = res.statusCode >= 200 && res.statusCode < 300;
    } catch (error) {
      if (this.stopCallbacks.signal.aborted) return;
      outcome = (error as { code?: string }).code ?? 'error';
    }
    const at = Date.now();
    const spec = integration.spec;
    const giveUpAt = (delivery.endedAt ?? at) + spec.delivery!.maxAgeMs;
    const retryAt = at + backoffDelay({ ...spec.retry.backoff, maxMs: spec.delivery!.maxBackoffMs }, (delivery.callback?.attempts ?? 0) + 1, this.context.random);
    const next = ok ? { state: 'done' as const } : retryAt >= giveUpAt ? { state: 'failed' as const } : { state: 'pending' as const, at: Math.round(retryAt) };
    try {
      await store.settleCallback(delivery.id, this.context.owner, { at, outcome, durationMs: performance.now() - started, next });
    } catch (error) {
      if (!(error instanceof LeaseLostError)) throw error;
    }
  }
}

/** The request of one attempt: the stored one, its idempotency key, and the credential read now. */
function outbound(integration: Integration, delivery: Delivery): Outbound {
  const headers: string[] = [];
  let keyed = false;
  for (const [name, value] of delivery.request.headers) {
    if (name.toLowerCase() === integration.idempotencyHeader) keyed = true;
    headers.push(name, value);
  }
  if (!keyed) headers.push(integration.idempotencyHeader, delivery.idempotencyKey);
  const credential = integration.authValue;
  if (integration.authHeader !== undefined && credential !== undefined) headers.push(integration.authHeader, credential);
  return {
    integration,
    path: integration.upstream.path(delivery.request.path),
    method: delivery.request.method,
    headers,
    body: delivery.request.body,
    idempotencyKey: true,
    bodyReplayable: true,
    scheduled: true,
  };
}

/** The vendor's end-to-end response headers, as kept with the delivery. */
function flatHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name)) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/** For the history (a status, or the failure) and the metric (a status class, or the failure). */
function attemptOutcome(report: TurnReport): { history: string; metric: string } | undefined {
  if (report.kind === 'not-sent') return undefined;
  if (report.kind === 'response') return { history: String(report.status), metric: statusClass(report.status) };
  const failure = report.failure ?? 'error';
  return { history: failure, metric: failure };
}
