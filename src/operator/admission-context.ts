// The webhook's view of a namespace, read from the informers' caches: an admission never waits on the
// API server, which is itself waiting on the webhook.
import type { Informer } from '../kube/informer.ts';
import type { StoredIntegration, StoredNamespace } from '../kube/resources.ts';
import type { ContextLookup } from './admission.ts';

class CacheNotSyncedError extends Error {
  override readonly name = 'CacheNotSyncedError';
  readonly code = 'cache_not_synced';
}

export function cacheLookup(namespaces: Informer<StoredNamespace>, integrations: Informer<StoredIntegration>): ContextLookup {
  return (namespace) => {
    // Before the first list the cache would say "no integrations" and the pod would get none.
    if (!namespaces.hasSynced() || !integrations.hasSynced()) throw new CacheNotSyncedError('namespace and integration caches not synced yet');
    return { namespace: namespaces.get('', namespace), integrations: integrations.list(namespace) };
  };
}
