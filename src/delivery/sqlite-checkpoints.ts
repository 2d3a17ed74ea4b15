// The writer's side of the `sqlite:` store's checkpoints (the thread that runs them is
// sqlite-checkpoint-thread.ts). That thread is started by the first commit that changed anything, so
// a store opened and never written costs no thread. While it runs, SQLite's own checkpoints (inside a
// commit) are off; if it stops, they are on again, so the WAL never grows without bound.
import { Worker } from 'node:worker_threads';
import type { SqliteDatabase } from './sqlite-database.ts';
import { besideModule } from './thread-module.ts';

/** To the checkpoint thread: the writer committed; it copied the WAL's last frames; or stop. */
export type WriterMessage = 'wrote' | 'finished' | 'close';
/** From it: a pass ended; or it ended with frames it could not catch, which the writer should copy. */
export type CheckpointerMessage = 'passed' | 'finish';

/** From this length on (16 MiB of 4 KiB pages), the WAL should start over at its beginning (the thread's pass). */
export const RESTART_FRAMES = 4096;

/** SQLite's own default, for when the thread is gone. */
const SQLITE_AUTOCHECKPOINT_PAGES = 1000;

const THREAD = besideModule('sqlite-checkpoint-thread', import.meta.url);

export class Checkpoints {
  private readonly db: SqliteDatabase;
  private thread: Worker | undefined;
  private exited: Promise<void> = Promise.resolve();
  /** Rows changed by the writer's connection when it last looked: a commit that changed none wrote no page. */
  private changes: number;
  /** A 'wrote' is on its way or waiting for its pass: one is enough. */
  private nudged = false;
  private stopped = false;

  constructor(db: SqliteDatabase) {
    this.db = db;
    this.changes = db.totalChanges();
  }

  /** After each transaction that may have written. */
  wrote(): void {
    if (this.stopped || this.nudged) return;
    const changes = this.db.totalChanges();
    if (changes === this.changes) return;
    this.changes = changes;
    this.nudged = true;
    (this.thread ?? this.start()).postMessage('wrote' satisfies WriterMessage);
  }

  /** Stops the thread and closes its connection; SQLite checkpoints as it closes the writer's. */
  stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      this.thread?.postMessage('close' satisfies WriterMessage);
    }
    return this.exited;
  }

  private start(): Worker {
    const db = this.db;
    const thread = new Worker(THREAD, { workerData: { path: db.path } });
    db.autoCheckpoint(0);
    thread.on('message', (message: CheckpointerMessage) => {
      this.nudged = false;
      if (message !== 'finish') return;
      // The frames committed during its passes: few, copied here between two batches, so the next
      // commit writes the WAL from its start again.
      try {
        db.checkpoint();
      } catch {
        // Nothing is lost: the frames stay in the WAL, and a disk that fails this fails the next commit too.
      }
      thread.postMessage('finished' satisfies WriterMessage);
    });
    this.exited = new Promise((resolve) => {
      // Whatever ended it (it could not open the file, a checkpoint failed), SQLite checkpoints again.
      thread.on('error', () => {});
      thread.on('exit', () => {
        if (!this.stopped) db.autoCheckpoint(SQLITE_AUTOCHECKPOINT_PAGES);
        this.stopped = true;
        resolve();
      });
    });
    this.thread = thread;
    return thread;
  }
}
