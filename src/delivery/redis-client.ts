// The one place a sidecar's Redis connection is built, for the delivery store and for global rate
// limits alike: the same URL, password and reconnect behaviour, whatever uses it.
import { createHash } from 'node:crypto';
import { createClient } from '@redis/client';

/** How long an operation waits for a connection being (re)established before failing. */
export const CONNECT_WAIT_MS = 2000;

/**
 * A client for `url` (password from the URL, or `password`), connecting at once and reconnecting on
 * its own. A command made while Redis is away fails at once rather than waiting in a queue: each user
 * turns that failure into its own answer (503 store_unavailable, or a local rate limit).
 */
export function createRedisClient(url: string, password?: string) {
  const client = createClient({
    url,
    ...(password !== undefined && { password }),
    disableOfflineQueue: true,
    socket: { connectTimeout: CONNECT_WAIT_MS, reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 2000) },
  });
  // The errors surface on the commands made meanwhile; the last one says why it is not connected
  // (refused, a wrong password, no route).
  let lastError: string | undefined;
  client.on('error', (error: Error) => (lastError = error.message));
  client.on('ready', () => (lastError = undefined));
  const connecting = client.connect().catch(() => undefined);
  return { client, connecting, lastError: () => lastError };
}

interface ScriptRunner {
  evalSha(sha: string, options: { arguments: (string | Buffer)[]; keys?: string[] }): Promise<unknown>;
  eval(script: string, options: { arguments: (string | Buffer)[]; keys?: string[] }): Promise<unknown>;
}

/** Runs a Lua script by its digest, so its text crosses the wire once per server, not once per call. */
export function runScript(client: ScriptRunner, script: string, options: { arguments: (string | Buffer)[]; keys?: string[] }): Promise<unknown> {
  return client.evalSha(digest(script), options).catch((error: Error) => {
    if (!error.message.startsWith('NOSCRIPT')) throw error;
    return client.eval(script, options);
  });
}

const digests = new Map<string, string>();
function digest(script: string): string {
  let sha = digests.get(script);
  if (sha === undefined) {
    sha = createHash('sha1').update(script).digest('hex');
    digests.set(script, sha);
  }
  return sha;
}
