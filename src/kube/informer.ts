// An informer: list, then watch from the list's resourceVersion, keeping a cache of every object and
// telling handlers what changed. Shared by the reconciling controller and the webhook.
//
// client-node 2.0.1's own ListWatch is replaced rather than wrapped: it stops for good on any error
// but 410 (a refused connection while the API server restarts ends it), it sends no
// `allowWatchBookmarks`, its lifecycle is an untyped `error`/`connect` pair, and it cannot ask for
// metadata-only objects. This one never stops until told to:
// - 410 Gone (on the watch or as an ERROR event) → re-list, and handlers see the difference;
// - refused or dropped connections, 5xx → retry with capped, jittered exponential backoff;
// - each watch carries `timeoutSeconds` (randomised, so replicas do not re-watch in lockstep) and asks
//   for bookmarks, which keep the resourceVersion fresh on quiet resources;
// - a watchdog abandons a watch that has been silent for longer than bookmarks allow (a half-open
//   connection that TCP has not noticed) and watches again.
import type { KubernetesObject, V1ObjectMeta } from '@kubernetes/client-node';
import { backoffDelay, sleep, type BackoffOptions } from './backoff.ts';
import type { KubeClient } from './client.ts';
import { isGone, KubeError } from './errors.ts';
import { collectionPath, METADATA_ACCEPT, METADATA_LIST_ACCEPT, type ResourceType } from './resources.ts';
import { streamWatch, type RawWatchEvent } from './watch.ts';

export const INFORMER_DEFAULTS = {
  /** A watch asks the server to end it after between this and twice this many seconds. */
  watchTimeoutSeconds: 300,
  /** The API server sends a bookmark at least once a minute, so 90 s of silence means a dead watch. */
  watchdogMs: 90_000,
  backoff: { initialMs: 500, maxMs: 30_000, jitter: true } satisfies BackoffOptions,
  pageSize: 500,
  /** A watch that stayed open this long (or its whole timeout) counts as progress, which resets the backoff. */
  healthyWatchMs: 5_000,
} as const;

export interface InformerOptions {
  /** Watch one namespace only; all namespaces by default. */
  readonly namespace?: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  readonly watchTimeoutSeconds?: number;
  readonly watchdogMs?: number;
  readonly backoff?: BackoffOptions;
  readonly pageSize?: number;
}

/** Typed lifecycle of the list/watch loop, for logs and metrics. */
export type InformerEvent =
  | { readonly type: 'listed'; readonly resourceVersion: string; readonly count: number }
  | { readonly type: 'watching'; readonly resourceVersion: string }
  | { readonly type: 'watch-ended'; readonly resourceVersion: string; readonly events: number }
  | { readonly type: 'expired'; readonly resourceVersion: string }
  | { readonly type: 'stalled'; readonly silentMs: number }
  | { readonly type: 'error'; readonly error: Error; readonly attempt: number; readonly retryInMs: number };

export interface ObjectHandlers<T> {
  add?(object: T): void;
  update?(old: T, object: T): void;
  delete?(object: T): void;
}

/** What every informer holds: objects the API server returned, which always have a name. */
export type NamedObject = KubernetesObject & { metadata: V1ObjectMeta & { name: string } };

interface ListResponse<T> {
  metadata?: { resourceVersion?: string; continue?: string };
  items?: T[];
}

class WatchdogFired extends Error {}

export class Informer<T extends NamedObject> {
  readonly resource: ResourceType;
  private readonly client: KubeClient;
  private readonly options: InformerOptions;
  private objects = new Map<string, Map<string, T>>();
  private readonly handlers = new Set<ObjectHandlers<T>>();
  private readonly listeners = new Set<(event: InformerEvent) => void>();
  private readonly syncWaiters: (() => void)[] = [];
  private resourceVersion = '';
  private synced = false;
  private abort: AbortController | undefined;
  private loop: Promise<void> | undefined;

  constructor(client: KubeClient, resource: ResourceType, options: InformerOptions = {}) {
    this.client = client;
    this.resource = resource;
    this.options = options;
  }

  /** Subscribes to object changes; returns the unsubscribe function. */
  addHandlers(handlers: ObjectHandlers<T>): () => void {
    this.handlers.add(handlers);
    return () => this.handlers.delete(handlers);
  }

  /** Subscribes to lifecycle events; returns the unsubscribe function. */
  onLifecycle(listener: (event: InformerEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get(namespace: string, name: string): T | undefined {
    return this.objects.get(namespace)?.get(name);
  }

  /** Objects in one namespace, or in all of them. */
  list(namespace?: string): T[] {
    if (namespace !== undefined) return [...(this.objects.get(namespace)?.values() ?? [])];
    return [...this.objects.values()].flatMap((m) => [...m.values()]);
  }

  hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves after the first complete list. */
  waitForSync(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  start(): void {
    if (this.loop) return;
    this.abort = new AbortController();
    this.loop = this.run(this.abort.signal);
  }

  async stop(): Promise<void> {
    this.abort?.abort();
    await this.loop;
    this.loop = undefined;
  }

  private async run(signal: AbortSignal): Promise<void> {
    let attempt = 0;
    while (!signal.aborted) {
      let progressed = false;
      try {
        if (this.resourceVersion === '') await this.relist(signal);
        const outcome = await this.watchOnce(signal);
        progressed = outcome.progressed;
        if (outcome.end === 'expired') {
          this.emit({ type: 'expired', resourceVersion: this.resourceVersion });
          this.resourceVersion = '';
        } else if (outcome.end === 'stalled') {
          this.emit({ type: 'stalled', silentMs: this.watchdogMs() });
        } else {
          this.emit({ type: 'watch-ended', resourceVersion: this.resourceVersion, events: outcome.events });
        }
        // A 410 or a timeout is routine and answered at once; only when they repeat without any
        // progress in between (a server that ends every watch immediately) do they wait.
        attempt = progressed ? 0 : attempt + 1;
        if (attempt > 1) await sleep(backoffDelay(attempt - 1, this.backoff()), signal);
      } catch (error) {
        if (signal.aborted) break;
        if (isGone(error)) {
          // An expired `continue` token or resourceVersion on the list or watch request itself.
          this.emit({ type: 'expired', resourceVersion: this.resourceVersion });
          this.resourceVersion = '';
          continue;
        }
        attempt += 1;
        const retryInMs = backoffDelay(attempt, this.backoff());
        this.emit({ type: 'error', error: error instanceof Error ? error : new Error(String(error)), attempt, retryInMs });
        await sleep(retryInMs, signal);
      }
    }
  }

  private async relist(signal: AbortSignal): Promise<void> {
    const fresh = new Map<string, Map<string, T>>();
    let resourceVersion = '';
    let continueToken: string | undefined;
    let count = 0;
    do {
      const page = await this.client.getJson<ListResponse<T>>(collectionPath(this.resource, this.options.namespace), {
        query: {
          limit: this.options.pageSize ?? INFORMER_DEFAULTS.pageSize,
          continue: continueToken,
          labelSelector: this.options.labelSelector,
          fieldSelector: this.options.fieldSelector,
        },
        accept: this.resource.metadataOnly ? METADATA_LIST_ACCEPT : undefined,
        signal,
        verb: 'LIST',
      });
      for (const item of page.items ?? []) {
        put(fresh, item);
        count += 1;
      }
      resourceVersion = page.metadata?.resourceVersion ?? '';
      continueToken = page.metadata?.continue || undefined;
    } while (continueToken);

    const previous = this.objects;
    this.objects = fresh;
    this.resourceVersion = resourceVersion;
    for (const [namespace, names] of fresh) {
      for (const [name, object] of names) {
        const old = previous.get(namespace)?.get(name);
        if (!old) this.dispatch((h) => h.add?.(object));
        else if (old.metadata.resourceVersion !== object.metadata.resourceVersion) this.dispatch((h) => h.update?.(old, object));
      }
    }
    for (const [namespace, names] of previous) {
      for (const [name, old] of names) if (!fresh.get(namespace)?.has(name)) this.dispatch((h) => h.delete?.(old));
    }
    this.emit({ type: 'listed', resourceVersion, count });
    if (!this.synced) {
      this.synced = true;
      for (const resolve of this.syncWaiters.splice(0)) resolve();
    }
  }

  private async watchOnce(
    signal: AbortSignal,
  ): Promise<{ end: 'closed' | 'expired' | 'stalled'; events: number; progressed: boolean }> {
    const watchdogMs = this.watchdogMs();
    const controller = new AbortController();
    const onStop = () => controller.abort(signal.reason);
    signal.addEventListener('abort', onStop, { once: true });
    const watchdog = setTimeout(() => controller.abort(new WatchdogFired()), watchdogMs);
    const started = Date.now();
    let events = 0;
    let expired = false;
    const timeoutSeconds = this.options.watchTimeoutSeconds ?? INFORMER_DEFAULTS.watchTimeoutSeconds;
    this.emit({ type: 'watching', resourceVersion: this.resourceVersion });
    try {
      await streamWatch(
        this.client,
        {
          path: collectionPath(this.resource, this.options.namespace),
          query: {
            resourceVersion: this.resourceVersion,
            allowWatchBookmarks: true,
            timeoutSeconds: Math.floor(timeoutSeconds * (1 + Math.random())),
            labelSelector: this.options.labelSelector,
            fieldSelector: this.options.fieldSelector,
          },
          accept: this.resource.metadataOnly ? METADATA_ACCEPT : undefined,
          signal: controller.signal,
        },
        (event) => {
          watchdog.refresh();
          if (expired) return;
          if (this.apply(event) === 'expired') {
            expired = true;
            controller.abort();
          } else events += 1;
        },
      );
    } catch (error) {
      if (controller.signal.reason instanceof WatchdogFired) return { end: 'stalled', events, progressed: events > 0 };
      if (!expired) throw error;
    } finally {
      clearTimeout(watchdog);
      signal.removeEventListener('abort', onStop);
    }
    // A watch the server kept open for as long as we asked (or a good while) was healthy, events or not.
    const progressed = events > 0 || Date.now() - started >= Math.min(INFORMER_DEFAULTS.healthyWatchMs, timeoutSeconds * 1000);
    return { end: expired ? 'expired' : 'closed', events, progressed };
  }

  private apply(event: RawWatchEvent): 'expired' | 'ok' {
    if (event.type === 'ERROR') {
      const status = event.object as { code?: number; message?: string };
      if (status.code === 410) return 'expired';
      throw new KubeError(status.code ?? 500, `watch ${this.resource.plural}: ${status.message ?? 'error event'}`);
    }
    const object = event.object as T;
    this.resourceVersion = object.metadata.resourceVersion ?? this.resourceVersion;
    if (event.type === 'BOOKMARK') return 'ok';
    const namespace = object.metadata.namespace ?? '';
    const old = this.objects.get(namespace)?.get(object.metadata.name);
    if (event.type === 'DELETED') {
      this.objects.get(namespace)?.delete(object.metadata.name);
      if (this.objects.get(namespace)?.size === 0) this.objects.delete(namespace);
      this.dispatch((h) => h.delete?.(old ?? object));
      return 'ok';
    }
    put(this.objects, object);
    if (!old) this.dispatch((h) => h.add?.(object));
    else if (old.metadata.resourceVersion !== object.metadata.resourceVersion) this.dispatch((h) => h.update?.(old, object));
    return 'ok';
  }

  private dispatch(call: (handlers: ObjectHandlers<T>) => void): void {
    for (const handlers of this.handlers) call(handlers);
  }

  private emit(event: InformerEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  private watchdogMs(): number {
    return this.options.watchdogMs ?? INFORMER_DEFAULTS.watchdogMs;
  }

  private backoff(): BackoffOptions {
    return this.options.backoff ?? INFORMER_DEFAULTS.backoff;
  }
}

/**
 * managedFields often outweigh the rest of an object and nothing that reads the cache needs them, so
 * they are dropped on the way in (client-go users do the same with a cache transform).
 */
function put<T extends NamedObject>(objects: Map<string, Map<string, T>>, object: T): void {
  delete object.metadata.managedFields;
  const namespace = object.metadata.namespace ?? '';
  let names = objects.get(namespace);
  if (!names) {
    names = new Map();
    objects.set(namespace, names);
  }
  names.set(object.metadata.name, object);
}
