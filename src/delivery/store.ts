// The delivery store: the one interface every backend (sqlite:, redis://) implements, and the shared
// contract suite (test/support/delivery-store-contract.ts) runs against each. A delivery is a request
// the sidecar acknowledged with 202 and owes the vendor until it ends `delivered` or `dead`.
//
// Times are milliseconds since the epoch and are always passed in (`now`), never read from a clock
// inside the store, so the rules on due and expired deliveries are decided by the caller's clock and the
// contract suite can test them without sleeping. A lease is the exception where several sidecars share
// a store: Redis measures it as the idle time of the claimed entry on its own clock (XAUTOCLAIM), so
// clocks that disagree between pods cannot end a live holder's lease early.

export const DELIVERY_STATES = ['queued', 'delivering', 'delivered', 'dead'] as const;
export type DeliveryState = (typeof DELIVERY_STATES)[number];

/** Refused: the vendor answered with a status that is not worth retrying. Expired: maxAge passed. */
export type DeadReason = 'refused' | 'expired';

/** The request as the vendor will get it, minus the credential (added per attempt, never stored). */
export interface StoredRequest {
  readonly method: string;
  /** The proxied URL after the integration name, query included: `/v1/invoices?draft=1`. */
  readonly path: string;
  /** End-to-end headers in the order the app sent them. */
  readonly headers: readonly (readonly [name: string, value: string])[];
  /** null when the request had no body, and once dropped `retain` after the delivery ended. */
  readonly body: Buffer | null;
}

/** The vendor's answer to the last attempt. */
export interface StoredResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  /** At most RESPONSE_BODY_LIMIT bytes; null once dropped `retain` after the delivery ended. */
  readonly body: Buffer | null;
  /** The vendor sent more than RESPONSE_BODY_LIMIT bytes. */
  readonly truncated: boolean;
}

/** Bytes of the vendor's final response body kept with a delivery (docs/design.md: 64 KiB). */
export const RESPONSE_BODY_LIMIT = 64 * 1024;

export interface NewDelivery {
  /** Chosen by the caller; the store keeps it unless the idempotency key names a live delivery. */
  readonly id: string;
  readonly integration: string;
  /** The app's own key, or the id. Every attempt carries it. */
  readonly idempotencyKey: string;
  /** Deliveries with the same key (in one integration) go one at a time, in submission order. */
  readonly orderingKey?: string;
  readonly request: StoredRequest;
  /** Where the outcome is POSTed once the delivery ends. */
  readonly callbackUrl?: string;
  /** Submission time + maxAge: not delivered by then, it ends dead (expired). */
  readonly expiresAt: number;
}

export type CallbackState = 'pending' | 'done' | 'failed';

export interface Delivery extends NewDelivery {
  readonly state: DeliveryState;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** While queued: not to be attempted before this time. */
  readonly nextAttemptAt: number;
  /** Attempts sent to the vendor so far. */
  readonly attempts: number;
  readonly lastError?: string;
  readonly response?: StoredResponse;
  readonly endedAt?: number;
  readonly deadReason?: DeadReason;
  /** While delivering: the sidecar holding it, and until when. */
  readonly owner?: string;
  readonly leaseUntil?: number;
  /** Once ended with a callbackUrl: whether the app has been told. */
  readonly callback?: { readonly state: CallbackState; readonly attempts: number; readonly nextAt: number };
}

/** A delivery as submit stores it: queued, due at once, not yet attempted. */
export function queuedDelivery(d: NewDelivery, now: number): Delivery {
  return {
    id: d.id,
    integration: d.integration,
    idempotencyKey: d.idempotencyKey,
    ...(d.orderingKey !== undefined && { orderingKey: d.orderingKey }),
    request: d.request,
    ...(d.callbackUrl !== undefined && { callbackUrl: d.callbackUrl }),
    expiresAt: d.expiresAt,
    state: 'queued',
    createdAt: now,
    updatedAt: now,
    nextAttemptAt: now,
    attempts: 0,
  };
}

/** `taken-over`: claimed by `sidecar` after the lease of the sidecar named in its outcome passed (that one died, or was too slow). */
export type HistoryEvent = 'queued' | 'taken-over' | 'attempt' | 'retry' | 'released' | 'delivered' | 'dead' | 'replayed' | 'callback';

/** One line of a delivery's history. Never a credential, never a body. */
export interface HistoryEntry {
  readonly at: number;
  readonly event: HistoryEvent;
  /** Which sidecar (or CLI) wrote it. */
  readonly sidecar: string;
  /** The attempt's number, for `attempt` and `callback`. */
  readonly attempt?: number;
  /** A vendor status (`503`) or a failure (`timeout`, `reset`, `circuit_open`, `expired` …). */
  readonly outcome?: string;
  readonly durationMs?: number;
}

export interface SubmitOptions {
  readonly now: number;
  /** Deliveries of this integration not yet ended; at this many, submit throws BacklogFullError. */
  readonly maxBacklog: number;
  readonly sidecar: string;
}

export interface SubmitResult {
  readonly delivery: Delivery;
  /** False when the idempotency key named a delivery that has not expired: that one is returned. */
  readonly created: boolean;
}

export interface ClaimOptions {
  readonly owner: string;
  readonly limit: number;
  /** The claim holds for this long; past it, any owner may take the delivery over. */
  readonly leaseMs: number;
  readonly now: number;
}

/** What became of a claimed delivery. */
export interface Settlement {
  readonly at: number;
  /** The attempt it reports on, when one was sent; absent for a delivery handed back untried. */
  readonly attempt?: { readonly outcome: string; readonly durationMs: number };
  readonly next:
    /** Try again from `at` (a retry after backoff, or handed back untried: `released`). */
    | { readonly state: 'queued'; readonly at: number; readonly error?: string }
    | { readonly state: 'delivered' }
    | { readonly state: 'dead'; readonly reason: DeadReason; readonly error?: string };
  /** The vendor's answer to this attempt, when it gave one; kept as the delivery's response. */
  readonly response?: StoredResponse;
}

export interface CallbackSettlement {
  readonly at: number;
  /** The callback's status, or why it failed. */
  readonly outcome: string;
  readonly durationMs: number;
  readonly next: { readonly state: 'done' } | { readonly state: 'failed' } | { readonly state: 'pending'; readonly at: number };
}

export interface ListFilter {
  readonly integration?: string;
  readonly state?: DeliveryState;
  /** Created at or after. */
  readonly since?: number;
  /** At most this many, oldest first. */
  readonly limit?: number;
}

export interface PurgeFilter {
  readonly state: 'delivered' | 'dead';
  /** Ended before this time. */
  readonly endedBefore: number;
  readonly integration?: string;
}

export interface BacklogStats {
  /** Deliveries queued or delivering. */
  readonly backlog: number;
  /** Creation time of the oldest of them. */
  readonly oldestCreatedAt: number | undefined;
  /** Deliveries ended dead and not purged: the dead letters. */
  readonly dead: number;
}

/**
 * Every method rejects with StoreUnavailableError when the backend cannot be reached or written, and
 * has then changed nothing it reported. Claimed deliveries are held under a lease: only the owner may
 * settle them until it passes, then anyone may claim them again.
 */
export interface DeliveryStore {
  /** Resolves once the delivery is durable (or the idempotency key named a live one). */
  submit(delivery: NewDelivery, options: SubmitOptions): Promise<SubmitResult>;
  get(id: string): Promise<Delivery | undefined>;
  /** In the order written; empty for an unknown id. */
  history(id: string): Promise<HistoryEntry[]>;
  list(filter: ListFilter): Promise<Delivery[]>;
  /**
   * Up to `limit` deliveries of `integration` that are due (queued with nextAttemptAt ≤ now, or
   * delivering with a lease that has passed), oldest first, now `delivering` under `owner`. Of the
   * deliveries sharing an ordering key only the oldest not ended is ever eligible.
   */
  claim(integration: string, options: ClaimOptions): Promise<Delivery[]>;
  /** Records the outcome for a delivery `owner` holds; LeaseLostError when it no longer does. */
  settle(id: string, owner: string, settlement: Settlement): Promise<Delivery>;
  /** An ended delivery back to queued, due at once: same id, same idempotency key. */
  replay(id: string, options: { readonly now: number; readonly sidecar: string }): Promise<Delivery>;
  /** Deletes ended deliveries and their history; returns how many. Their idempotency keys are free again. */
  purge(filter: PurgeFilter): Promise<number>;
  /** Drops the request and response bodies of deliveries that ended before `endedBefore`; returns how many. */
  compact(integration: string, endedBefore: number): Promise<number>;
  stats(integration: string): Promise<BacklogStats>;
  /** When, counted from `now`, the next delivery of `integration` becomes claimable; undefined when none will. */
  nextDueAt(integration: string, now: number): Promise<number | undefined>;
  /** Like claim, for ended deliveries whose callback is pending and due. */
  claimCallbacks(integration: string, options: ClaimOptions): Promise<Delivery[]>;
  settleCallback(id: string, owner: string, settlement: CallbackSettlement): Promise<Delivery>;
  close(): Promise<void>;
}
