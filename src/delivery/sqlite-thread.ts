// The thread that owns the `sqlite:` store's database, so the sidecar's event loop never waits for a
// disk: SQLite's fsync blocks this thread only. Operations that arrive while it is busy are run
// together in one transaction once it is free (group commit): one fsync makes the lot durable,
// and each is answered only after that commit. The WAL's checkpoints run beside it (sqlite-checkpoints.ts).
import { parentPort, workerData } from 'node:worker_threads';
import { Checkpoints } from './sqlite-checkpoints.ts';
import { SqliteDatabase, type SqliteOperation, type SqliteStoreOptions } from './sqlite-database.ts';
import { toWire, type Reply, type Request } from './sqlite-wire.ts';

const READS: ReadonlySet<SqliteOperation> = new Set(['get', 'history', 'list', 'stats', 'nextDueAt']);

const { path, options } = workerData as { path: string; options: SqliteStoreOptions };
const port = parentPort!;
const db = new SqliteDatabase(path, options);
const checkpoints = new Checkpoints(db);
let queue: Request[] = [];
let scheduled = false;

port.on('message', (requests: Request[]) => {
  queue.push(...requests);
  if (scheduled) return;
  scheduled = true;
  // After every message already waiting has been queued.
  setImmediate(flush);
});

function flush(): void {
  scheduled = false;
  const batch = queue;
  queue = [];
  const operations = batch.filter((r) => r.op !== 'close');
  const writes = operations.some((r) => !READS.has(r.op as SqliteOperation));
  const outcomes = db.group(
    operations.map((r) => () => (db[r.op as SqliteOperation] as (...args: unknown[]) => unknown).apply(db, [...r.args])),
    writes,
  );
  port.postMessage(operations.map((r, i): Reply => ({ id: r.id, ...toWire(outcomes[i]) })));
  if (writes) checkpoints.wrote();
  const close = batch.find((r) => r.op === 'close');
  if (close === undefined) return;
  void checkpoints.stop().then(() => {
    db.close();
    port.postMessage([{ id: close.id, value: undefined }] satisfies Reply[]);
    port.close();
  });
}
