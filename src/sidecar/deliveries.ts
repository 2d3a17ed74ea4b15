// Durable delivery in the sidecar (docs/design.md, "Durable delivery"): a call sent with `Prefer: respond-async`
// to an integration with `spec.delivery` is stored, and answered 202 only once the store says it is
// durable; one DeliveryWorker per such integration then owes it to the vendor. Also serves
// GET /_breakwater/deliveries/<id>. The store is opened when first needed, and opened again after a
// failure, so a store that is not ready costs the async calls a 503 and nothing else.
import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hostname } from 'node:os';
import { DELIVERIES_PATH, ORDERING_KEY_HEADER } from '../api/names.ts';
import { BacklogFullError, StoreUnavailableError } from '../delivery/errors.ts';
import { describeLocation, type StoreLocation } from '../delivery/location.ts';
import type { DeliveryStore } from '../delivery/store.ts';
import { deliveryView } from '../delivery/view.ts';
import type { Logger } from '../runtime/logger.ts';
import { readBody, RequestTooLargeError, type BodyLimits } from './body.ts';
import type { IntegrationTable } from './config.ts';
import type { DeliveryMetrics } from './delivery-metrics.ts';
import { DeliveryWorker } from './delivery-worker.ts';
import { toErrorResponse, type SidecarError } from './error-response.ts';
import { outboundHeaders } from './headers.ts';
import type { Integration } from './integration.ts';

/** RFC 7240: the `respond-async` preference, alone or among others (`respond-async, wait=10`). */
const RESPOND_ASYNC = /(?:^|,)\s*respond-async\s*(?:[,;=]|$)/i;
/** Longest idempotency or ordering key accepted; both are stored and indexed. */
const MAX_KEY_LENGTH = 256;

export function prefersAsync(prefer: string | string[] | undefined): boolean {
  if (prefer === undefined) return false;
  return RESPOND_ASYNC.test(typeof prefer === 'string' ? prefer : prefer.join(','));
}

export interface DeliveriesOptions {
  readonly location: StoreLocation;
  readonly table: IntegrationTable;
  readonly metrics: DeliveryMetrics;
  readonly logger: Logger;
  readonly limits: BodyLimits;
  readonly random?: () => number;
}

export class Deliveries {
  /** This sidecar in claims and histories: the pod's name and a per-process suffix. */
  readonly owner = `${hostname()}-${randomBytes(3).toString('hex')}`;
  private readonly options: DeliveriesOptions;
  private readonly workers = new Map<string, DeliveryWorker>();
  private opened: DeliveryStore | undefined;
  private closed = false;

  constructor(options: DeliveriesOptions) {
    this.options = options;
  }

  /** The store, opened now if it is not yet; rejects with StoreUnavailableError. */
  store = async (): Promise<DeliveryStore> => {
    if (this.closed) throw new StoreUnavailableError('the sidecar is shutting down');
    if (this.opened === undefined) {
      // The stores' code (SQLite and its thread, the Redis client) is loaded here, so a sidecar none of
      // whose integrations delivers never carries it.
      const { openStore } = await import('../delivery/open.ts');
      if (this.closed) throw new StoreUnavailableError('the sidecar is shutting down');
      if (this.opened === undefined) {
        this.opened = openStore(this.options.location);
        this.options.logger.info({ store: describeLocation(this.options.location) }, 'delivery store opened');
      }
    }
    return this.opened;
  };

  /** Starts a worker for each integration with `spec.delivery`, and stops those that lost it (after a reload). */
  sync(): void {
    if (this.closed) return;
    const table = this.options.table;
    const wanted = new Set(table.names().filter((name) => table.get(name)?.spec.delivery !== undefined));
    for (const name of wanted) {
      // A reload may have brought a new policy (a closed breaker, more tokens): look again at once.
      if (this.workers.has(name)) {
        this.workers.get(name)!.wake();
        continue;
      }
      this.workers.set(
        name,
        new DeliveryWorker(name, {
          store: this.store,
          owner: this.owner,
          table,
          metrics: this.options.metrics,
          logger: this.options.logger,
          random: this.options.random ?? Math.random,
        }),
      );
    }
    for (const [name, worker] of this.workers) {
      if (wanted.has(name)) continue;
      this.workers.delete(name);
      // Its backlog stays in the store for when the integration delivers again.
      void worker.stop(0).then(() => this.options.metrics.remove(name));
    }
  }

  /** Stops every worker (in-flight turns get `timeoutMs`, then go back to the store) and closes the store. */
  async drain(timeoutMs: number): Promise<void> {
    this.closed = true;
    await Promise.all([...this.workers.values()].map((worker) => worker.stop(timeoutMs)));
    this.workers.clear();
    await this.opened?.close();
  }

  /** Stores a `Prefer: respond-async` call, then answers 202 (or 200 for a key already submitted). */
  async accept(req: IncomingMessage, res: ServerResponse, integration: Integration, rest: string): Promise<void> {
    const spec = integration.spec.delivery!;
    const fail = (error: SidecarError) => toErrorResponse(res, error, { name: integration.name, attempts: 0 });
    try {
      // The stored headers never hold the credential: it is written per attempt from the Secret.
      const out = outboundHeaders(req.rawHeaders, { idempotencyHeader: integration.idempotencyHeader, authHeader: integration.authHeader, authValue: undefined });
      const headers: [string, string][] = [];
      let idempotencyKey: string | undefined;
      let orderingKey: string | undefined;
      for (let i = 0; i < out.headers.length; i += 2) {
        const name = out.headers[i]!;
        const value = out.headers[i + 1]!;
        const lower = name.toLowerCase();
        // Addressed to the sidecar, not the vendor.
        if (lower === 'prefer') continue;
        if (lower === ORDERING_KEY_HEADER) {
          orderingKey = value;
          continue;
        }
        if (lower === integration.idempotencyHeader) idempotencyKey = value;
        headers.push([name, value]);
      }
      // A blank idempotency key gives the vendor nothing to deduplicate on, and a synchronous call
      // does not count it as a key (headers.ts): refused here rather than stored as one.
      if (idempotencyKey !== undefined && (idempotencyKey.trim() === '' || idempotencyKey.length > MAX_KEY_LENGTH)) {
        fail({ code: 'bad_request', message: `the ${integration.idempotencyHeader} header must be 1 to ${MAX_KEY_LENGTH} characters, not all of them whitespace` });
        return;
      }
      if (orderingKey !== undefined && (orderingKey.length === 0 || orderingKey.length > MAX_KEY_LENGTH)) {
        fail({ code: 'bad_request', message: `the ${ORDERING_KEY_HEADER} header must be 1 to ${MAX_KEY_LENGTH} characters` });
        return;
      }
      const limit = this.options.limits.maxRequestBodyBytes;
      let body: Buffer | null;
      try {
        // The whole body is kept, up to the request maximum: every attempt replays it.
        const read = readBody(req, out.contentLength, out.chunked, { retryBufferBytes: limit, maxRequestBodyBytes: limit });
        body = (read instanceof Promise ? await read : read) as Buffer | null;
      } catch (error) {
        if (error instanceof RequestTooLargeError) fail({ code: 'request_too_large', message: error.message });
        else res.destroy();
        return;
      }
      const id = randomUUID();
      const now = Date.now();
      const store = await this.store();
      const { delivery, created } = await store.submit(
        {
          id,
          integration: integration.name,
          idempotencyKey: idempotencyKey ?? id,
          ...(orderingKey !== undefined && { orderingKey }),
          request: { method: req.method ?? 'GET', path: rest, headers, body },
          ...(spec.callbackUrl !== undefined && { callbackUrl: spec.callbackUrl }),
          expiresAt: now + spec.maxAgeMs,
        },
        { now, maxBacklog: spec.maxBacklog, sidecar: this.owner },
      );
      if (created) this.workers.get(integration.name)?.wake();
      const answer = Buffer.from(JSON.stringify({ delivery: delivery.id, integration: integration.name, state: delivery.state }));
      res.writeHead(created ? 202 : 200, {
        'content-type': 'application/json',
        'content-length': answer.length,
        'preference-applied': 'respond-async',
        location: DELIVERIES_PATH + delivery.id,
      });
      res.end(answer);
    } catch (error) {
      if (error instanceof BacklogFullError) fail({ code: 'backlog_full', message: error.message });
      else if (error instanceof StoreUnavailableError) {
        this.options.logger.error({ integration: integration.name, err: error }, 'a respond-async call could not be stored; answered 503');
        fail({ code: 'store_unavailable', message: 'the delivery store could not be written; the call was not accepted' });
      } else {
        this.options.logger.error({ integration: integration.name, err: error }, 'accepting a delivery failed');
        res.destroy();
      }
    }
  }

  /** GET /_breakwater/deliveries/<id>: the delivery, its vendor's last response and its history. */
  async serveStatus(req: IncomingMessage, res: ServerResponse, url: string): Promise<void> {
    const fail = (error: SidecarError) => toErrorResponse(res, error, { name: '', attempts: 0 });
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      fail({ code: 'bad_request', message: `${DELIVERIES_PATH}<id> answers GET only` });
      return;
    }
    let id: string;
    try {
      id = decodeURIComponent(url.slice(DELIVERIES_PATH.length).split('?')[0]!);
    } catch {
      fail({ code: 'bad_request', message: 'the delivery id is not valid percent-encoding' });
      return;
    }
    try {
      const store = await this.store();
      const delivery = await store.get(id);
      if (delivery === undefined) {
        fail({ code: 'delivery_not_found', message: `no delivery ${JSON.stringify(id)} in this sidecar's store` });
        return;
      }
      const body = Buffer.from(JSON.stringify(deliveryView(delivery, await store.history(id))));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length }).end(req.method === 'HEAD' ? undefined : body);
    } catch (error) {
      if (error instanceof StoreUnavailableError) fail({ code: 'store_unavailable', message: 'the delivery store could not be read' });
      else {
        this.options.logger.error({ err: error }, 'reading a delivery failed');
        res.destroy();
      }
    }
  }
}
