// Where a delivery store lives, told from its URL: `sqlite:PATH`, `sqlite:` for the file under the
// data directory, or `redis://…` (`rediss://` for TLS) for a store every sidecar pointing at it
// shares. A URL is checked when the program starts (a typo is a usage error). Kept apart from the
// stores, so that checking and describing one loads neither SQLite nor the Redis client: a sidecar
// whose integrations deliver nothing never loads them.
import { isAbsolute, join, resolve } from 'node:path';
import { SQLITE_FILE } from '../api/names.ts';
import { StoreUrlError } from './errors.ts';

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
  if (isRedisUrl(url)) return { kind: 'redis', url, ...(password !== undefined && { password }) };
  throw new StoreUrlError(
    `${JSON.stringify(redact(url))} is not a delivery store URL; use sqlite:PATH, sqlite: for the file under the data directory, or redis://[:PASSWORD@]HOST:PORT[/DB]`,
  );
}

/** redis[s]://[USER][:PASSWORD]@HOST[:PORT][/DB]: what the Redis client takes, checked here so a typo is a usage error, not its TypeError. */
export function isRedisUrl(url: string): boolean {
  if (!/^rediss?:\/\/[^/?#]/.test(url) || !URL.canParse(url)) return false;
  const { hostname, pathname } = new URL(url);
  return hostname !== '' && /^(\/\d*)?$/.test(pathname);
}

/** Where a location keeps its data, for logs and errors: never a password. */
export function describeLocation(location: StoreLocation): string {
  return location.kind === 'redis' ? redact(location.url) : `sqlite:${location.path}`;
}

/** The URL without its password, for messages and logs. */
export function redact(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, (_, auth: string) => `//${auth.includes(':') ? `${auth.split(':')[0]}:***` : '***'}@`);
}
