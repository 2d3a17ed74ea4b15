// The `sqlite:` delivery store's database on Node's built-in node:sqlite: nothing native to download at
// install. WAL with synchronous=FULL, so a commit has reached the disk when it returns. node:sqlite
// is synchronous, so this runs on a thread of its own (sqlite-thread.ts), which also groups the
// operations that arrive together into one transaction; SqliteStore (sqlite-store.ts) is the
// DeliveryStore the rest of the program sees. Every operation here is one transaction of its own, or
// part of its group's. Each checks what may refuse it before it writes anything.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import {
  BacklogFullError,
  DeliveryNotFoundError,
  DeliveryNotReplayableError,
  LeaseLostError,
  StoreUnavailableError,
} from './errors.ts';
import {
  queuedDelivery,
  type BacklogStats,
  type CallbackSettlement,
  type ClaimOptions,
  type Delivery,
  type DeliveryStore,
  type HistoryEntry,
  type HistoryEvent,
  type ListFilter,
  type NewDelivery,
  type PurgeFilter,
  type Settlement,
  type StoredResponse,
  type SubmitOptions,
  type SubmitResult,
} from './store.ts';

export interface SqliteStoreOptions {
  /** How long a write waits for another process's lock (the CLI, a second sidecar) before failing. */
  readonly busyTimeoutMs?: number;
}

/** The operations the thread runs, by name: those of DeliveryStore, synchronous. */
export type SqliteOperation = Exclude<keyof DeliveryStore, 'close'>;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS deliveries (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  integration TEXT NOT NULL,
  idempotency_key TEXT NOT NULL,
  ordering_key TEXT,
  method TEXT NOT NULL,
  path TEXT NOT NULL,
  headers TEXT NOT NULL,
  body BLOB,
  callback_url TEXT,
  expires_at INTEGER NOT NULL,
  state TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  response_status INTEGER,
  response_headers TEXT,
  response_body BLOB,
  response_truncated INTEGER,
  ended_at INTEGER,
  dead_reason TEXT,
  owner TEXT,
  lease_until INTEGER,
  callback_state TEXT,
  callback_attempts INTEGER NOT NULL DEFAULT 0,
  callback_next_at INTEGER,
  callback_owner TEXT,
  callback_lease_until INTEGER,
  bodies_dropped INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS deliveries_by_state ON deliveries (integration, state, next_attempt_at);
DROP INDEX IF EXISTS deliveries_by_ordering_key;
CREATE INDEX IF NOT EXISTS deliveries_by_callback ON deliveries (integration, callback_state, callback_next_at) WHERE callback_state IS NOT NULL;
CREATE INDEX IF NOT EXISTS deliveries_live_by_created ON deliveries (integration, created_at) WHERE state IN ('queued', 'delivering');
CREATE INDEX IF NOT EXISTS deliveries_queued_by_seq ON deliveries (integration, seq) WHERE state = 'queued';
CREATE INDEX IF NOT EXISTS deliveries_live_by_ordering_key ON deliveries (integration, ordering_key, seq) WHERE ordering_key IS NOT NULL AND state IN ('queued', 'delivering');
CREATE INDEX IF NOT EXISTS deliveries_to_compact ON deliveries (integration, ended_at) WHERE bodies_dropped = 0 AND ended_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS idempotency_keys (
  integration TEXT NOT NULL,
  key TEXT NOT NULL,
  id TEXT NOT NULL,
  PRIMARY KEY (integration, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history (
  delivery_id TEXT NOT NULL,
  n INTEGER NOT NULL,
  at INTEGER NOT NULL,
  event TEXT NOT NULL,
  sidecar TEXT NOT NULL,
  attempt INTEGER,
  outcome TEXT,
  duration_ms INTEGER,
  PRIMARY KEY (delivery_id, n)
) WITHOUT ROWID;
`;

/** The layout SCHEMA creates, kept in the file's user_version; files written before it was kept have 0. */
const SCHEMA_VERSION = 1;

// Every page a commit changes is written to the WAL and fsynced before its submissions are answered,
// and copied to the database file again at the next checkpoint, so a submission's cost on disk is the
// number of b-trees it touches. Version 1 touches four fewer: an idempotency key and a history line are
// each one b-tree (tables keyed by what they are looked up by, not a rowid table beside an index), the
// index of pending callbacks holds only deliveries that have one, and the index of every delivery by
// creation time is gone: it cost every submission a page for the CLI's list and export, which sort
// the keys of what they read instead. 14 pages per submission alone in its commit
// become 10 (`npm run bench:delivery` counts them).
// Version 0 to 1, around SCHEMA: the old tables are moved aside before it creates the new ones, and
// copied into them after. History keeps its numbers, so each delivery's lines keep their order.
const FROM_0_BEFORE = `
ALTER TABLE idempotency_keys RENAME TO idempotency_keys_0;
ALTER TABLE history RENAME TO history_0;
DROP INDEX IF EXISTS deliveries_by_callback;
DROP INDEX IF EXISTS deliveries_by_created;
`;
const FROM_0_AFTER = `
INSERT INTO idempotency_keys (integration, key, id) SELECT integration, key, id FROM idempotency_keys_0;
INSERT INTO history (delivery_id, n, at, event, sidecar, attempt, outcome, duration_ms)
  SELECT delivery_id, n, at, event, sidecar, attempt, outcome, duration_ms FROM history_0;
DROP TABLE idempotency_keys_0;
DROP TABLE history_0;
`;

// How many deliveries of each integration have not ended, kept by triggers whoever writes (a sidecar,
// the CLI): every submission checks maxBacklog, and counting a backlog of 100,000 rows each time would
// cost more than the insert.
const BACKLOG_SCHEMA = `
CREATE TABLE backlog (integration TEXT PRIMARY KEY, live INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO backlog (integration, live) SELECT integration, COUNT(*) FROM deliveries WHERE state IN ('queued', 'delivering') GROUP BY integration;
CREATE TRIGGER backlog_on_insert AFTER INSERT ON deliveries WHEN NEW.state IN ('queued', 'delivering') BEGIN
  INSERT INTO backlog (integration, live) VALUES (NEW.integration, 1) ON CONFLICT (integration) DO UPDATE SET live = live + 1;
END;
CREATE TRIGGER backlog_on_replay AFTER UPDATE OF state ON deliveries
WHEN OLD.state NOT IN ('queued', 'delivering') AND NEW.state IN ('queued', 'delivering') BEGIN
  INSERT INTO backlog (integration, live) VALUES (NEW.integration, 1) ON CONFLICT (integration) DO UPDATE SET live = live + 1;
END;
CREATE TRIGGER backlog_on_end AFTER UPDATE OF state ON deliveries
WHEN OLD.state IN ('queued', 'delivering') AND NEW.state NOT IN ('queued', 'delivering') BEGIN
  UPDATE backlog SET live = live - 1 WHERE integration = OLD.integration;
END;
CREATE TRIGGER backlog_on_delete AFTER DELETE ON deliveries WHEN OLD.state IN ('queued', 'delivering') BEGIN
  UPDATE backlog SET live = live - 1 WHERE integration = OLD.integration;
END;
`;

const OWN_ERRORS = [BacklogFullError, DeliveryNotFoundError, DeliveryNotReplayableError, LeaseLostError, StoreUnavailableError];

const LIVE = "state IN ('queued', 'delivering')";

/** Of the deliveries sharing an ordering key, only the oldest not ended (`d`) may go. */
const HEAD = `(d.ordering_key IS NULL OR NOT EXISTS (
  SELECT 1 FROM deliveries e INDEXED BY deliveries_live_by_ordering_key
  WHERE e.integration = d.integration AND e.ordering_key = d.ordering_key AND e.seq < d.seq AND e.${LIVE}))`;

type Row = Record<string, unknown>;
/** A delivery claim() may take; `owner` is the holder of a lease that passed (undefined for a queued one). */
type Claimable = { seq: number; id: string; owner?: string };

/**
 * Fails now, with StoreUnavailableError, where no database can be opened at `path` (a folder that cannot
 * be made, a file that is not one). It takes no lock and writes no schema, so a writer in another
 * process cannot make the caller's event loop wait; the thread that owns the database opens it fully.
 */
export function probeDatabasePath(path: string): void {
  try {
    openFile(path).close();
  } catch (error) {
    throw unavailable(`cannot open the delivery store ${path}`, error);
  }
}

/** The file at `path`, its folder made first when absent. */
function openFile(path: string, busyTimeoutMs?: number): DatabaseSync {
  mkdirSync(dirname(path), { recursive: true });
  return new DatabaseSync(path, busyTimeoutMs === undefined ? {} : { timeout: busyTimeoutMs });
}

export class SqliteDatabase {
  readonly path: string;
  private readonly db: DatabaseSync;
  private readonly statements = new Map<string, StatementSync>();

  /** Opens (creating when absent) the database at `path`; StoreUnavailableError when it cannot. */
  constructor(path: string, options: SqliteStoreOptions = {}) {
    this.path = path;
    try {
      this.db = openFile(path, options.busyTimeoutMs ?? 5000);
      this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF;');
      this.transaction(() => {
        const version = (this.db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version;
        if (version > SCHEMA_VERSION) throw new Error(`it was written by a newer version of Breakwater (schema ${version}; this one reads up to ${SCHEMA_VERSION})`);
        const fromZero = version === 0 && this.hasTable('deliveries');
        if (fromZero) this.db.exec(FROM_0_BEFORE);
        this.db.exec(SCHEMA);
        if (fromZero) this.db.exec(FROM_0_AFTER);
        // A file written before the count existed gets it, counted once.
        if (!this.hasTable('backlog')) this.db.exec(BACKLOG_SCHEMA);
        this.db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
      });
    } catch (error) {
      throw unavailable(`cannot open the delivery store ${path}`, error);
    }
  }

  /**
   * Runs `operations` in one transaction, so one fsync makes them all durable, and returns what each
   * returned or threw. An operation refuses (BacklogFullError, LeaseLostError …) before it writes, so
   * the others go on; when SQLite fails one, or the commit, the whole group is rolled back and every
   * operation in it fails with StoreUnavailableError. Reads alone need no transaction.
   */
  group(operations: readonly (() => unknown)[], writes: boolean): unknown[] {
    const run = () =>
      operations.map((operation) => {
        try {
          return operation();
        } catch (error) {
          if (writes && (error instanceof StoreUnavailableError || !OWN_ERRORS.some((type) => error instanceof type))) throw error;
          return error instanceof Error ? error : new Error(String(error));
        }
      });
    if (!writes) return run();
    try {
      return this.transaction(run);
    } catch (error) {
      const failure = unavailable('the delivery store could not be written; nothing was accepted', error);
      return operations.map(() => failure);
    }
  }

  submit(delivery: NewDelivery, options: SubmitOptions): SubmitResult {
    return this.guard(() => this.transaction(() => this.submitOne(delivery, options)));
  }

  private submitOne(d: NewDelivery, options: SubmitOptions): SubmitResult {
    const known = this.stmt('SELECT id FROM idempotency_keys WHERE integration = ? AND key = ?').get(d.integration, d.idempotencyKey) as
      | { id: string }
      | undefined;
    if (known) {
      const existing = this.read(known.id);
      if (existing && existing.expiresAt > options.now) return { delivery: existing, created: false };
    }
    if (this.backlog(d.integration) >= options.maxBacklog) throw new BacklogFullError(d.integration, options.maxBacklog);
    this.stmt(
      `INSERT INTO deliveries (id, integration, idempotency_key, ordering_key, method, path, headers, body, callback_url,
         expires_at, state, created_at, updated_at, next_attempt_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)`,
    ).run(
      d.id,
      d.integration,
      d.idempotencyKey,
      d.orderingKey ?? null,
      d.request.method,
      d.request.path,
      JSON.stringify(d.request.headers),
      d.request.body,
      d.callbackUrl ?? null,
      d.expiresAt,
      options.now,
      options.now,
      options.now,
    );
    this.stmt('INSERT OR REPLACE INTO idempotency_keys (integration, key, id) VALUES (?, ?, ?)').run(d.integration, d.idempotencyKey, d.id);
    this.log(d.id, { at: options.now, event: 'queued', sidecar: options.sidecar });
    return { delivery: queuedDelivery(d, options.now), created: true };
  }

  get(id: string): Delivery | undefined {
    return this.guard(() => this.read(id));
  }

  history(id: string): HistoryEntry[] {
    return this.guard(() =>
      (this.stmt('SELECT at, event, sidecar, attempt, outcome, duration_ms FROM history WHERE delivery_id = ? ORDER BY n').all(id) as Row[]).map(
        toHistory,
      ),
    );
  }

  list(filter: ListFilter): Delivery[] {
    const where: string[] = [];
    const params: SQLInputValue[] = [];
    if (filter.integration !== undefined) {
      where.push('integration = ?');
      params.push(filter.integration);
    }
    if (filter.state !== undefined) {
      where.push('state = ?');
      params.push(filter.state);
    }
    if (filter.since !== undefined) {
      where.push('created_at >= ?');
      params.push(filter.since);
    }
    params.push(filter.limit ?? -1);
    // In creation order: a replay moves a delivery's seq to the back of the queue, not its creation.
    // The keys are sorted, then each row read by its key: a sort of whole rows (a join's ORDER BY
    // too) would carry every body through the sorter.
    const keys = `SELECT seq FROM deliveries ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, seq LIMIT ?`;
    return this.guard(() => {
      const row = this.stmt('SELECT * FROM deliveries WHERE seq = ?');
      // One compacted or purged by another process in between is left out, as if listed a moment later.
      return (this.db.prepare(keys).all(...params) as { seq: number }[]).flatMap(({ seq }) => {
        const found = row.get(seq) as Row | undefined;
        return found ? [toDelivery(found)] : [];
      });
    });
  }

  claim(integration: string, o: ClaimOptions): Delivery[] {
    return this.guard(() =>
      this.transaction(() => {
        // Leases that passed, and due deliveries read in submission order off their own index (one
        // query for both would sort the whole backlog), oldest first.
        const rows = [
          ...(this.stmt(`SELECT seq, id, owner FROM deliveries d WHERE integration = ? AND state = 'delivering' AND lease_until <= ? AND ${HEAD} ORDER BY seq LIMIT ?`).all(
            integration,
            o.now,
            o.limit,
          ) as Claimable[]),
          ...(this.stmt(
            `SELECT seq, id FROM deliveries d INDEXED BY deliveries_queued_by_seq
             WHERE integration = ? AND state = 'queued' AND next_attempt_at <= ? AND ${HEAD} ORDER BY seq LIMIT ?`,
          ).all(integration, o.now, o.limit) as Claimable[]),
        ]
          .sort((a, b) => a.seq - b.seq)
          .slice(0, o.limit);
        return rows.map(({ id, owner }) => {
          // A holder that claims its own passed lease again took nothing over.
          if (owner !== undefined && owner !== o.owner) this.log(id, { at: o.now, event: 'taken-over', sidecar: o.owner, outcome: `from ${owner}` });
          return this.update("UPDATE deliveries SET state = 'delivering', owner = ?, lease_until = ?, updated_at = ? WHERE id = ?", o.owner, o.now + o.leaseMs, o.now, id);
        });
      }),
    );
  }

  settle(id: string, owner: string, s: Settlement): Delivery {
    return this.guard(() =>
      this.transaction(() => {
        const current = this.read(id);
        if (!current) throw new DeliveryNotFoundError(id);
        if (current.state !== 'delivering' || current.owner !== owner) throw new LeaseLostError(id, owner);
        const attempts = current.attempts + (s.attempt ? 1 : 0);
        if (s.attempt) this.log(id, { at: s.at, event: 'attempt', sidecar: owner, attempt: attempts, ...s.attempt });
        const next = s.next;
        const error = next.state === 'delivered' ? undefined : next.error;
        const ended = next.state !== 'queued';
        const event: HistoryEvent = next.state === 'queued' ? (s.attempt ? 'retry' : 'released') : next.state;
        this.log(id, { at: s.at, event, sidecar: owner, ...(next.state === 'dead' && { outcome: next.reason }) });
        const response = s.response;
        return this.update(
          `UPDATE deliveries SET state = ?, updated_at = ?, next_attempt_at = ?, attempts = ?, last_error = COALESCE(?, last_error),
             response_status = COALESCE(?, response_status), response_headers = COALESCE(?, response_headers),
             response_body = CASE WHEN ? THEN ? ELSE response_body END, response_truncated = COALESCE(?, response_truncated),
             ended_at = ?, dead_reason = ?, owner = NULL, lease_until = NULL,
             callback_state = CASE WHEN ? AND callback_url IS NOT NULL THEN 'pending' ELSE callback_state END,
             callback_next_at = CASE WHEN ? AND callback_url IS NOT NULL THEN ? ELSE callback_next_at END
           WHERE id = ?`,
          next.state,
          s.at,
          next.state === 'queued' ? next.at : current.nextAttemptAt,
          attempts,
          error ?? null,
          response?.status ?? null,
          response ? JSON.stringify(response.headers) : null,
          response ? 1 : 0,
          response?.body ?? null,
          response ? Number(response.truncated) : null,
          ended ? s.at : null,
          next.state === 'dead' ? next.reason : null,
          ended ? 1 : 0,
          ended ? 1 : 0,
          s.at,
          id,
        );
      }),
    );
  }

  replay(id: string, o: { readonly now: number; readonly sidecar: string }): Delivery {
    return this.guard(() =>
      this.transaction(() => {
        const current = this.read(id);
        if (!current) throw new DeliveryNotFoundError(id);
        if (current.endedAt === undefined) throw new DeliveryNotReplayableError(`delivery ${id} is ${current.state}, not ended`);
        if (this.stmt('SELECT bodies_dropped FROM deliveries WHERE id = ?').get(id)!.bodies_dropped === 1) {
          throw new DeliveryNotReplayableError(`delivery ${id} ended too long ago: its request body was dropped (delivery.retain)`);
        }
        // It gets as long again as it had the first time.
        const expiresAt = o.now + (current.expiresAt - current.createdAt);
        // At the back of the queue, as a new submission would be: deliveries that share its ordering
        // key and are not ended go first (the order is seq's), not beside it.
        const { seq } = this.stmt("UPDATE sqlite_sequence SET seq = seq + 1 WHERE name = 'deliveries' RETURNING seq").get() as { seq: number };
        const replayed = this.update(
          `UPDATE deliveries SET seq = ?, state = 'queued', updated_at = ?, next_attempt_at = ?, expires_at = ?, ended_at = NULL, dead_reason = NULL,
             callback_state = NULL, callback_attempts = 0, callback_next_at = NULL, callback_owner = NULL, callback_lease_until = NULL
           WHERE id = ?`,
          seq,
          o.now,
          o.now,
          expiresAt,
          id,
        );
        this.stmt('INSERT OR REPLACE INTO idempotency_keys (integration, key, id) VALUES (?, ?, ?)').run(current.integration, current.idempotencyKey, id);
        this.log(id, { at: o.now, event: 'replayed', sidecar: o.sidecar });
        return replayed;
      }),
    );
  }

  purge(filter: PurgeFilter): number {
    return this.guard(() =>
      this.transaction(() => {
        const params: SQLInputValue[] = [filter.state, filter.endedBefore];
        let sql = 'SELECT id, integration, idempotency_key FROM deliveries WHERE state = ? AND ended_at < ?';
        if (filter.integration !== undefined) {
          sql += ' AND integration = ?';
          params.push(filter.integration);
        }
        const rows = this.db.prepare(sql).all(...params) as { id: string; integration: string; idempotency_key: string }[];
        for (const row of rows) {
          this.stmt('DELETE FROM history WHERE delivery_id = ?').run(row.id);
          this.stmt('DELETE FROM idempotency_keys WHERE integration = ? AND key = ? AND id = ?').run(row.integration, row.idempotency_key, row.id);
          this.stmt('DELETE FROM deliveries WHERE id = ?').run(row.id);
        }
        return rows.length;
      }),
    );
  }

  compact(integration: string, endedBefore: number): number {
    return this.guard(() => {
      // Housekeeping runs on the writer every minute: off its index it would read every delivery ever
      // kept, and every ack behind it would wait for that scan.
      const result = this.stmt(
        `UPDATE deliveries INDEXED BY deliveries_to_compact SET body = NULL, response_body = NULL, bodies_dropped = 1
         WHERE integration = ? AND ended_at < ? AND bodies_dropped = 0`,
      ).run(integration, endedBefore);
      return Number(result.changes);
    });
  }

  stats(integration: string): BacklogStats {
    return this.guard(() => {
      const oldest = this.stmt(`SELECT MIN(created_at) AS at FROM deliveries WHERE integration = ? AND ${LIVE}`).get(integration) as { at: number | null };
      const dead = this.stmt("SELECT COUNT(*) AS n FROM deliveries WHERE integration = ? AND state = 'dead'").get(integration) as { n: number };
      return { backlog: this.backlog(integration), oldestCreatedAt: oldest.at ?? undefined, dead: dead.n };
    });
  }

  nextDueAt(integration: string): number | undefined {
    return this.guard(() => {
      // Two minimums, each read off an index, rather than one over the whole backlog.
      const queued = this.stmt("SELECT MIN(next_attempt_at) AS at FROM deliveries WHERE integration = ? AND state = 'queued'").get(integration) as { at: number | null };
      const held = this.stmt("SELECT MIN(lease_until) AS at FROM deliveries WHERE integration = ? AND state = 'delivering'").get(integration) as { at: number | null };
      if (queued.at === null) return held.at ?? undefined;
      return held.at === null ? queued.at : Math.min(queued.at, held.at);
    });
  }

  claimCallbacks(integration: string, o: ClaimOptions): Delivery[] {
    return this.guard(() =>
      this.transaction(() => {
        const rows = this.stmt(
          `SELECT id FROM deliveries WHERE integration = ? AND callback_state = 'pending' AND callback_next_at <= ?
             AND (callback_lease_until IS NULL OR callback_lease_until <= ?)
           ORDER BY seq LIMIT ?`,
        ).all(integration, o.now, o.now, o.limit) as { id: string }[];
        return rows.map(({ id }) => this.update('UPDATE deliveries SET callback_owner = ?, callback_lease_until = ? WHERE id = ?', o.owner, o.now + o.leaseMs, id));
      }),
    );
  }

  settleCallback(id: string, owner: string, s: CallbackSettlement): Delivery {
    return this.guard(() =>
      this.transaction(() => {
        const row = this.stmt('SELECT callback_owner, callback_state, callback_attempts FROM deliveries WHERE id = ?').get(id) as
          | { callback_owner: string | null; callback_state: string | null; callback_attempts: number }
          | undefined;
        if (!row) throw new DeliveryNotFoundError(id);
        if (row.callback_state !== 'pending' || row.callback_owner !== owner) throw new LeaseLostError(id, owner);
        const attempts = row.callback_attempts + 1;
        this.log(id, { at: s.at, event: 'callback', sidecar: owner, attempt: attempts, outcome: s.outcome, durationMs: s.durationMs });
        return this.update(
          `UPDATE deliveries SET callback_state = ?, callback_attempts = ?, callback_next_at = ?, callback_owner = NULL,
             callback_lease_until = NULL, updated_at = ? WHERE id = ?`,
          s.next.state,
          attempts,
          s.next.state === 'pending' ? s.next.at : null,
          s.at,
          id,
        );
      }),
    );
  }

  /** SQLite's own checkpoint, run by the commit that takes the WAL past `pages` pages; 0 turns it off. */
  autoCheckpoint(pages: number): void {
    this.db.exec(`PRAGMA wal_autocheckpoint = ${pages}`);
  }

  /** Copies into the database file what the WAL holds and no reader still needs (PASSIVE: it waits for no one). */
  checkpoint(): void {
    this.stmt('PRAGMA wal_checkpoint(PASSIVE)').get();
  }

  /** Rows this connection has inserted, updated or deleted since it opened. */
  totalChanges(): number {
    return (this.stmt('SELECT total_changes() AS n').get() as { n: number }).n;
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }

  private backlog(integration: string): number {
    const row = this.stmt('SELECT live FROM backlog WHERE integration = ?').get(integration) as { live: number } | undefined;
    return row?.live ?? 0;
  }

  /** Runs an UPDATE of one delivery and answers the row as it left it, in the same statement. */
  private update(sql: string, ...params: SQLInputValue[]): Delivery {
    return toDelivery(this.stmt(`${sql} RETURNING *`).get(...params) as Row);
  }

  private read(id: string): Delivery | undefined {
    const row = this.stmt('SELECT * FROM deliveries WHERE id = ?').get(id) as Row | undefined;
    return row && toDelivery(row);
  }

  private log(id: string, entry: HistoryEntry): void {
    this.stmt(
      `INSERT INTO history (delivery_id, n, at, event, sidecar, attempt, outcome, duration_ms)
       VALUES (?1, (SELECT IFNULL(MAX(n), 0) + 1 FROM history WHERE delivery_id = ?1), ?, ?, ?, ?, ?, ?)`,
    ).run(
      id,
      entry.at,
      entry.event,
      entry.sidecar,
      entry.attempt ?? null,
      entry.outcome ?? null,
      entry.durationMs === undefined ? null : Math.round(entry.durationMs),
    );
  }

  private hasTable(name: string): boolean {
    return this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
  }

  private stmt(sql: string): StatementSync {
    let statement = this.statements.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  /**
   * BEGIN IMMEDIATE takes the write lock up front, so two writers queue instead of failing mid-way.
   * Inside a group's transaction the body is part of that one (see group).
   */
  private transaction<T>(body: () => T): T {
    if (this.db.isTransaction) return body();
    this.stmt('BEGIN IMMEDIATE').run();
    try {
      const result = body();
      this.stmt('COMMIT').run();
      return result;
    } catch (error) {
      if (this.db.isTransaction) this.db.exec('ROLLBACK');
      throw error;
    }
  }

  /** Our own typed errors pass; anything SQLite throws means the store is unavailable. */
  private guard<T>(body: () => T): T {
    try {
      return body();
    } catch (error) {
      if (OWN_ERRORS.some((type) => error instanceof type)) throw error;
      throw unavailable('the delivery store could not be read or written', error);
    }
  }
}

function unavailable(message: string, cause: unknown): StoreUnavailableError {
  return new StoreUnavailableError(`${message}: ${(cause as Error).message}`, { cause });
}

const blob = (value: unknown): Buffer | null =>
  value === null || value === undefined ? null : Buffer.from((value as Uint8Array).buffer, (value as Uint8Array).byteOffset, (value as Uint8Array).byteLength);

function toDelivery(r: Row): Delivery {
  const response: StoredResponse | undefined =
    r.response_status === null
      ? undefined
      : {
          status: r.response_status as number,
          headers: JSON.parse(r.response_headers as string) as Record<string, string>,
          body: blob(r.response_body),
          truncated: r.response_truncated === 1,
        };
  return {
    id: r.id as string,
    integration: r.integration as string,
    idempotencyKey: r.idempotency_key as string,
    ...(r.ordering_key !== null && { orderingKey: r.ordering_key as string }),
    request: {
      method: r.method as string,
      path: r.path as string,
      headers: JSON.parse(r.headers as string) as [string, string][],
      body: blob(r.body),
    },
    ...(r.callback_url !== null && { callbackUrl: r.callback_url as string }),
    expiresAt: r.expires_at as number,
    state: r.state as Delivery['state'],
    createdAt: r.created_at as number,
    updatedAt: r.updated_at as number,
    nextAttemptAt: r.next_attempt_at as number,
    attempts: r.attempts as number,
    ...(r.last_error !== null && { lastError: r.last_error as string }),
    ...(response && { response }),
    ...(r.ended_at !== null && { endedAt: r.ended_at as number }),
    ...(r.dead_reason !== null && { deadReason: r.dead_reason as Delivery['deadReason'] & string }),
    ...(r.owner !== null && { owner: r.owner as string, leaseUntil: r.lease_until as number }),
    ...(r.callback_state !== null && {
      callback: {
        state: r.callback_state as NonNullable<Delivery['callback']>['state'],
        attempts: r.callback_attempts as number,
        nextAt: (r.callback_next_at as number | null) ?? 0,
      },
    }),
  };
}

function toHistory(r: Row): HistoryEntry {
  return {
    at: r.at as number,
    event: r.event as HistoryEvent,
    sidecar: r.sidecar as string,
    ...(r.attempt !== null && { attempt: r.attempt as number }),
    ...(r.outcome !== null && { outcome: r.outcome as string }),
    ...(r.duration_ms !== null && { durationMs: r.duration_ms as number }),
  };
}
