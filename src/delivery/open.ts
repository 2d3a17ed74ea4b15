// Opens the delivery store a location names (src/delivery/location.ts reads the URL). The store itself
// is opened when first needed, so a sidecar whose disk is not ready still serves synchronous calls.
import { existsSync } from 'node:fs';
import { StoreUnavailableError } from './errors.ts';
import type { StoreLocation } from './location.ts';
import { RedisStore } from './redis-store.ts';
import { SqliteStore } from './sqlite-store.ts';
import type { DeliveryStore } from './store.ts';

/**
 * Throws StoreUnavailableError when the store cannot be opened. `existing` refuses to create one: a
 * tool that reads a store should say a path is wrong rather than show an empty new store there.
 */
export function openStore(location: StoreLocation, options: { readonly existing?: boolean } = {}): DeliveryStore {
  if (location.kind === 'redis') return new RedisStore(location.url, location.password);
  if (options.existing && !existsSync(location.path)) throw new StoreUnavailableError(`there is no delivery store at ${location.path}`);
  return new SqliteStore(location.path);
}
