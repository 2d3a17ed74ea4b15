// A Source is a stream of object events from an informer, filtered by predicates and mapped to keys by
// an event handler. The informer runs on every replica; a source is connected only while this replica
// leads, and on connecting it replays the informer's cache as adds, so nothing that changed while
// another replica (or nobody) was leading is missed.
import type { Informer, NamedObject } from '../kube/informer.ts';
import type { EventHandler, ObjectEvent } from './event-handler.ts';
import type { Predicate } from './predicate.ts';

export interface Source<T extends NamedObject> {
  readonly informer: Informer<T>;
  readonly handler: EventHandler<T>;
  readonly predicates?: readonly Predicate<T>[];
}

export interface Connection {
  /** Keys for every object already in the cache. */
  readonly initialKeys: readonly string[];
  disconnect(): void;
}

/** A source with its object type erased, as a controller holds several. */
export interface Watch {
  connect(enqueue: (key: string) => void): Connection;
}

export function watch<T extends NamedObject>(source: Source<T>): Watch {
  return { connect: (enqueue) => connectSource(source, enqueue) };
}

function connectSource<T extends NamedObject>(source: Source<T>, enqueue: (key: string) => void): Connection {
  const keys = (event: ObjectEvent<T>): readonly string[] =>
    (source.predicates ?? []).every((passes) => passes(event)) ? source.handler(event) : [];
  const emit = (event: ObjectEvent<T>) => {
    for (const key of keys(event)) enqueue(key);
  };
  const disconnect = source.informer.addHandlers({
    add: (object) => emit({ type: 'add', object }),
    update: (old, object) => emit({ type: 'update', old, object }),
    delete: (object) => emit({ type: 'delete', object }),
  });
  const initialKeys = source.informer.list().flatMap((object) => keys({ type: 'add', object }));
  return { initialKeys, disconnect };
}
