// EventHandlers turn an object event into the keys to reconcile. The operator's unit of work is the
// namespace: one ConfigMap per namespace holds all of its integrations.
import type { KubernetesObject } from '@kubernetes/client-node';

export type ObjectEvent<T> =
  | { readonly type: 'add'; readonly object: T }
  | { readonly type: 'update'; readonly old: T; readonly object: T }
  | { readonly type: 'delete'; readonly object: T };

export type EventHandler<T> = (event: ObjectEvent<T>) => readonly string[];

/** The object's namespace is the key. */
export const enqueueNamespace: EventHandler<KubernetesObject> = (event) => {
  const namespace = event.object.metadata?.namespace;
  return namespace ? [namespace] : [];
};
