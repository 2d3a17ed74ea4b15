// The `sqlite:` delivery store as the program sees it: each operation is sent to the thread that owns
// the database (sqlite-thread.ts) and answered when it has committed, so a 202 still means on disk,
// and a slow disk holds up the store's callers, never the event loop of the proxy around them.
import { Worker } from 'node:worker_threads';
import { StoreUnavailableError } from './errors.ts';
import { probeDatabasePath, type SqliteDatabase, type SqliteOperation, type SqliteStoreOptions } from './sqlite-database.ts';
import { detach, fromWire, revive, type Reply, type Request } from './sqlite-wire.ts';
import type { DeliveryStore } from './store.ts';
import { besideModule } from './thread-module.ts';

export type { SqliteStoreOptions } from './sqlite-database.ts';

const THREAD = besideModule('sqlite-thread', import.meta.url);

interface Waiting {
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
}

export class SqliteStore implements DeliveryStore {
  readonly path: string;
  private readonly options: SqliteStoreOptions;
  private thread: Worker | undefined;
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 0;
  /** Requests made in this turn of the event loop: they cross to the thread in one message. */
  private outbox: Request[] = [];
  private closing: Promise<void> | undefined;

  /** Opens (creating when absent) the database at `path`; StoreUnavailableError when it cannot. */
  constructor(path: string, options: SqliteStoreOptions = {}) {
    this.path = path;
    this.options = options;
    // Here, so a path that cannot hold a database fails the caller at once.
    probeDatabasePath(path);
    // Now, so the first call does not wait for the thread to boot.
    this.start();
  }

  submit = this.operation('submit');
  get = this.operation('get');
  history = this.operation('history');
  list = this.operation('list');
  claim = this.operation('claim');
  settle = this.operation('settle');
  replay = this.operation('replay');
  purge = this.operation('purge');
  compact = this.operation('compact');
  stats = this.operation('stats');
  nextDueAt = this.operation('nextDueAt');
  claimCallbacks = this.operation('claimCallbacks');
  settleCallback = this.operation('settleCallback');

  /** Answers what was asked before, then closes the database and ends its thread. */
  close(): Promise<void> {
    this.closing ??= this.thread === undefined ? Promise.resolve() : (this.send('close', []) as Promise<void>);
    return this.closing;
  }

  private operation<K extends SqliteOperation>(op: K): (...args: Parameters<SqliteDatabase[K]>) => Promise<ReturnType<SqliteDatabase[K]>> {
    return (...args) => {
      if (this.closing !== undefined) return Promise.reject(new StoreUnavailableError(`the delivery store ${this.path} is closed`));
      return this.send(op, args) as Promise<ReturnType<SqliteDatabase[K]>>;
    };
  }

  private send(op: Request['op'], args: readonly unknown[]): Promise<unknown> {
    const thread = this.start();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      // An idle thread does not keep the process alive; one that owes an answer does.
      if (this.waiting.size === 1) thread.ref();
      this.outbox.push({ id, op, args: detach(args) as unknown[] });
      if (this.outbox.length > 1) return;
      queueMicrotask(() => {
        const requests = this.outbox;
        this.outbox = [];
        thread.postMessage(requests);
      });
    });
  }

  /** The thread, started now if it is not running (first use, or it died). */
  private start(): Worker {
    if (this.thread !== undefined) return this.thread;
    const thread = new Worker(THREAD, { workerData: { path: this.path, options: this.options } });
    thread.unref();
    thread.on('message', (replies: Reply[]) => {
      for (const reply of replies) {
        const waiting = this.waiting.get(reply.id);
        if (waiting === undefined) continue;
        this.waiting.delete(reply.id);
        if ('error' in reply) waiting.reject(fromWire(reply.error));
        else waiting.resolve(revive(reply.value));
      }
      if (this.waiting.size === 0) thread.unref();
    });
    // Whatever ended the thread, what it still owed failed: nothing unanswered was acknowledged.
    const ended = (error?: Error) => {
      if (this.thread !== thread) return;
      this.thread = undefined;
      const failure = new StoreUnavailableError(`the delivery store ${this.path} stopped${error ? `: ${error.message}` : ''}`, { cause: error });
      for (const waiting of this.waiting.values()) waiting.reject(failure);
      this.waiting.clear();
    };
    thread.on('error', ended);
    thread.on('exit', () => ended());
    this.thread = thread;
    return thread;
  }
}
