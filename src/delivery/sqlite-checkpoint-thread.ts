// The `sqlite:` store's WAL checkpoints, on a thread and a connection of their own (sqlite-checkpoints.ts
// starts it from the thread that writes). A checkpoint copies what the WAL holds back into the database
// file and fsyncs that file. Left to SQLite, it runs inside the commit that takes the WAL past 1000
// pages, several times a second at 500 submissions/s, and every submission waiting behind that commit
// waits for the copy and its fsync too. A PASSIVE checkpoint takes no lock a writer needs, so here it runs
// while the writer goes on committing.
import { DatabaseSync } from 'node:sqlite';
import { parentPort, workerData } from 'node:worker_threads';
import type { CheckpointerMessage, WriterMessage } from './sqlite-checkpoints.ts';

/** Passes are this far apart at least: a page written again meanwhile is copied once. */
const PASS_INTERVAL_MS = 100;
/** From this length on (16 MiB of 4 KiB pages), the WAL should start over at its beginning (see pass). */
const RESTART_FRAMES = 4096;
/** Tries in a row to leave no frame behind before the writer is asked to copy the last ones. */
const FINISH_TRIES = 8;

const { path } = workerData as { path: string };
const port = parentPort!;
const db = new DatabaseSync(path);
// The checkpoint's own fsyncs (WAL before the copy, database file after) follow this connection's setting.
db.exec('PRAGMA synchronous = FULL');
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
let timer: NodeJS.Timeout | undefined;
let lastPassAt = 0;
let waitingForWriter = false;

port.on('message', (message: WriterMessage) => {
  if (message === 'close') {
    clearTimeout(timer);
    db.close();
    port.close();
    return;
  }
  // A 'wrote' that came while the writer was copying was not answered: the pass after 'finished' is its answer.
  if (message === 'finished') waitingForWriter = false;
  if (timer === undefined && !waitingForWriter) timer = setTimeout(pass, Math.max(0, lastPassAt + PASS_INTERVAL_MS - performance.now()));
});

function pass(): void {
  timer = undefined;
  let wal = run();
  // The writer starts the WAL over at its beginning only when a transaction begins with every frame
  // copied, and a pass copies the frames committed before it began: under a steady stream of commits
  // some land during each pass and the WAL would only grow. (SQLite also fsyncs the database file
  // only in a pass that copied every frame, which is what makes starting over safe.) Once it is long,
  // the frames committed meanwhile are copied again at once (each try has fewer), until a try finds
  // none new.
  for (let tries = 0; wal.log >= RESTART_FRAMES && tries < FINISH_TRIES; tries++) {
    const next = run();
    const caughtUp = next.log < wal.log || (next.log === wal.log && next.checkpointed === next.log);
    wal = caughtUp ? { log: 0, checkpointed: 0 } : next;
  }
  lastPassAt = performance.now();
  waitingForWriter = wal.log >= RESTART_FRAMES;
  port.postMessage((waitingForWriter ? 'finish' : 'passed') satisfies CheckpointerMessage);
}

/** Frames in the WAL and frames copied, as of the pass's start. */
function run(): { log: number; checkpointed: number } {
  const row = checkpoint.get() as { busy: number; log: number; checkpointed: number };
  return { log: row.log, checkpointed: row.checkpointed };
}
