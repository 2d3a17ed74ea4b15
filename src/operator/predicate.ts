// Predicates filter object events before they become keys.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { ObjectEvent } from './event-handler.ts';

export type Predicate<T> = (event: ObjectEvent<T>) => boolean;

/**
 * Passes adds, deletes and updates that changed `metadata.generation`. Status writes (our own, via the
 * subresource) do not bump the generation, so the controller does not wake itself up.
 */
export const generationChanged: Predicate<KubernetesObject> = (event) =>
  event.type !== 'update' || event.old.metadata?.generation !== event.object.metadata?.generation;

/** Passes events for objects in namespaces where `inScope` holds. */
export function namespaceWhere(inScope: (namespace: string) => boolean): Predicate<KubernetesObject> {
  return (event) => inScope(event.object.metadata?.namespace ?? '');
}
