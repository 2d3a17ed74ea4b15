// The `sqlite:` store's WAL checkpoints, on a thread and a connection of their own (sqlite-checkpoints.ts
// starts it from the thread that writes). A checkpoint copies what the WAL holds back into the database
// file and fsyncs that file. Left to SQLite, it runs inside the commit that takes the WAL past 1000
// pages, several times a second at 500 submissions/s, and every submission waiting behind that commit
// waits for the copy and its fsync too. A PASSIVE checkpoint takes no lock a writer needs, so here it runs
// while the writer goes on committing.
import { DatabaseSync } from 'node:sqlite';
import { parentPort, workerData } from 'node:worker_threads';
import { RESTART_FRAMES, type CheckpointerMessage, type WriterMessage } from './sqlite-checkpoints.ts';

/** Passes are this far apart at least: a page written again meanwhile is copied once. */
const PASS_INTERVAL_MS = 100;
/** Tries in a row to leave few frames behind before the writer is asked to copy the last ones. */
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
  let log = framesInWal();
  // The writer starts the WAL over at its beginning only when one of its transactions begins with every
  // frame copied, and a pass copies the frames committed before it began: under a steady stream of
  // commits some land during each pass, or come from a transaction that began before it ended, and
  // the WAL would only grow. Once it is long, the frames committed meanwhile are copied at once (each
  // try has fewer; SQLite fsyncs the database file in the try that copies the last), until a try
  // finds none new; then the writer, between two of its transactions, copies what is left, if anything,
  // so its next one starts the WAL over.
  for (let tries = 1; log >= RESTART_FRAMES && tries < FINISH_TRIES; tries++) {
    const next = framesInWal();
    const settled = next <= log;
    log = next;
    if (settled) break;
  }
  lastPassAt = performance.now();
  waitingForWriter = log >= RESTART_FRAMES;
  port.postMessage((waitingForWriter ? 'finish' : 'passed') satisfies CheckpointerMessage);
}

/** Runs a checkpoint; the frames in the WAL as it began. */
function framesInWal(): number {
  return (checkpoint.get() as { log: number }).log;
}
