// What crosses between SqliteStore and the thread that owns the database. Messages are structured
// clones: a Buffer arrives as a plain Uint8Array and an error as a plain Error, so each typed error
// travels as the fields it is rebuilt from, and bytes become Buffers again on arrival.
import { BacklogFullError, DeliveryNotFoundError, DeliveryNotReplayableError, LeaseLostError, StoreUnavailableError } from './errors.ts';
import type { SqliteOperation } from './sqlite-database.ts';

export interface Request {
  readonly id: number;
  readonly op: SqliteOperation | 'close';
  readonly args: readonly unknown[];
}

type WireError =
  | { readonly type: 'backlog_full'; readonly integration: string; readonly maxBacklog: number }
  | { readonly type: 'delivery_not_found'; readonly id: string }
  | { readonly type: 'lease_lost'; readonly id: string; readonly owner: string }
  | { readonly type: 'delivery_not_replayable' | 'store_unavailable'; readonly message: string };

export type Reply = { readonly id: number } & ({ readonly value: unknown } | { readonly error: WireError });

/** An operation's outcome (what it returned, or the error it threw) as a reply carries it. */
export function toWire(outcome: unknown): { value: unknown } | { error: WireError } {
  if (!(outcome instanceof Error)) return { value: detach(outcome) };
  if (outcome instanceof BacklogFullError) return { error: { type: outcome.code, integration: outcome.integration, maxBacklog: outcome.maxBacklog } };
  if (outcome instanceof DeliveryNotFoundError) return { error: { type: outcome.code, id: outcome.id } };
  if (outcome instanceof LeaseLostError) return { error: { type: outcome.code, id: outcome.id, owner: outcome.owner } };
  if (outcome instanceof DeliveryNotReplayableError) return { error: { type: outcome.code, message: outcome.message } };
  return { error: { type: 'store_unavailable', message: outcome.message } };
}

/** The typed error a reply carries. */
export function fromWire(error: WireError): Error {
  switch (error.type) {
    case 'backlog_full':
      return new BacklogFullError(error.integration, error.maxBacklog);
    case 'delivery_not_found':
      return new DeliveryNotFoundError(error.id);
    case 'lease_lost':
      return new LeaseLostError(error.id, error.owner);
    case 'delivery_not_replayable':
      return new DeliveryNotReplayableError(error.message);
    case 'store_unavailable':
      return new StoreUnavailableError(error.message);
  }
}

/**
 * The value with every byte array copied to one of its own size: a Buffer is often a view of a larger
 * one (Node's 8 KiB pool, a socket's read), and a message would carry the whole of that.
 */
export function detach(value: unknown): unknown {
  if (value instanceof Uint8Array) return value.byteLength === value.buffer.byteLength ? value : value.slice();
  if (Array.isArray(value)) return value.map(detach);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, v]) => [key, detach(v)]));
  return value;
}

/** The value with every Uint8Array a Buffer again, as the DeliveryStore types promise. */
export function revive(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (Array.isArray(value)) return value.map(revive);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, v]) => [key, revive(v)]));
  return value;
}
