// Store URLs: `sqlite:PATH`, `sqlite:` for the file under the data directory, or `redis://…`
// (`rediss://` for TLS) for a store every sidecar pointing at it shares. A URL is checked when
// the program starts (a typo is a usage error); the store itself is opened when first needed, so a
// sidecar whose disk is not ready still serves synchronous calls.
import { existsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { SQLITE_FILE } from '../api/names.ts';
import { StoreUnavailableError, StoreUrlError } from './errors.ts';
import { redact, RedisStore } from './redis-store.ts';
import { SqliteStore } from './sqlite-store.ts';
import type { DeliveryStore } from './store.ts';

export type StoreLocation =
  | { readonly kind: 'sqlite'; readonly path: string }
  | { readonly kind: 'redis'; readonly url: string; readonly password?: string };

/** Throws StoreUrlError for a URL no store understands. `password` is for a redis:// URL that holds none. */
export function parseStoreUrl(url: string, dataDir: string, password?: string): StoreLocation {
  if (url.startsWith('sqlite:')) {
    // sqlite:/abs, sqlite:///abs and sqlite:relative all name a file.
    const path = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (path === '') return { kind: 'sqlite', path: join(dataDir, SQLITE_FILE) };
    return { kind: 'sqlite', path: isAbsolute(path) ? path : resolve(path) };
  }
  if (/^rediss?:\/\/[^/?#]/.test(url)) return { kind: 'redis', url, ...(password !== undefined && { password }) };
  throw new StoreUrlError(
    `${JSON.stringify(redact(url))} is not a delivery store URL; use sqlite:PATH, sqlite: for the file under the data directory, or redis://[:PASSWORD@]HOST:PORT[/DB]`,
  );
}

/**
 * Throws StoreUnavailableError when the store cannot be opened. `existing` refuses to create one: a
 * tool that reads a store should say a path is wrong rather than show an empty new store there.
 */
export function openStore(location: StoreLocation, options: { readonly existing?: boolean } = {}): DeliveryStore {
  if (location.kind === 'redis') return new RedisStore(location.url, location.password);
  if (options.existing && !existsSync(location.path)) throw new StoreUnavailableError(`there is no delivery store at ${location.path}`);
  return new SqliteStore(location.path);
}

/** Where a location keeps its data, for logs and errors: never a password. */
export function describeLocation(location: StoreLocation): string {
  return location.kind === 'redis' ? redact(location.url) : `sqlite:${location.path}`;
}
