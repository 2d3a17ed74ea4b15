// Typed failures of the delivery store. Each `code` is stable: the sidecar answers the three that a
// caller can see with docs/design.md's error JSON (src/api/errors.ts), and the CLI maps each to an exit code.
import type { SidecarErrorCode } from '../api/errors.ts';

/** The store could not be read or written: nothing was accepted (or changed) by this call. */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
  readonly code = 'store_unavailable' satisfies SidecarErrorCode;
}

/** The integration holds `maxBacklog` deliveries that have not ended; the new one was not stored. */
export class BacklogFullError extends Error {
  override readonly name = 'BacklogFullError';
  readonly code = 'backlog_full' satisfies SidecarErrorCode;
  readonly integration: string;
  readonly maxBacklog: number;

  constructor(integration: string, maxBacklog: number) {
    super(`${integration} holds ${maxBacklog} deliveries not yet ended (delivery.maxBacklog)`);
    this.integration = integration;
    this.maxBacklog = maxBacklog;
  }
}

export class DeliveryNotFoundError extends Error {
  override readonly name = 'DeliveryNotFoundError';
  readonly code = 'delivery_not_found' satisfies SidecarErrorCode;
  readonly id: string;

  constructor(id: string) {
    super(`no delivery ${JSON.stringify(id)}`);
    this.id = id;
  }
}

/**
 * The caller no longer holds the delivery: its lease ran out and another sidecar (or a later claim)
 * took it over. What the caller meant to record is dropped; the new holder's outcome counts.
 */
export class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';
  readonly code = 'lease_lost';
  readonly id: string;
  readonly owner: string;

  constructor(id: string, owner: string) {
    super(`${owner} no longer holds delivery ${id}`);
    this.id = id;
    this.owner = owner;
  }
}

/** Replay takes an ended delivery whose request body is still kept; this one is not. */
export class DeliveryNotReplayableError extends Error {
  override readonly name = 'DeliveryNotReplayableError';
  readonly code = 'delivery_not_replayable';
}

/** `--delivery-store` / `--store` names no store this build can open. */
export class StoreUrlError extends Error {
  override readonly name = 'StoreUrlError';
  readonly code = 'bad_store_url';
}
