// The `sqlite:` delivery store on Node's built-in node:sqlite: nothing native to download at install.
// WAL with synchronous=FULL, so a commit has reached the disk when it returns. Submissions that
// arrive in the same turn of the event loop share one transaction (group commit): one fsync for the
// lot instead of one per call, which is what lets a 2-core pod acknowledge thousands a second.
// node:sqlite is synchronous; every statement here is indexed and short, so the loop is not held long.
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
CREATE INDEX IF NOT EXISTS deliveries_by_ordering_key ON deliveries (integration, ordering_key, seq) WHERE ordering_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS deliveries_by_callback ON deliveries (integration, callback_state, callback_next_at);
CREATE INDEX IF NOT EXISTS deliveries_by_created ON deliveries (created_at);
CREATE INDEX IF NOT EXISTS deliveries_live_by_created ON deliveries (integration, created_at) WHERE state IN ('queued', 'delivering');
CREATE TABLE IF NOT EXISTS idempotency_keys (
  integration TEXT NOT NULL,
  key TEXT NOT NULL,
  id TEXT NOT NULL,
  PRIMARY KEY (integration, key)
);
CREATE TABLE IF NOT EXISTS history (
  n INTEGER PRIMARY KEY AUTOINCREMENT,
  delivery_id TEXT NOT NULL,
  at INTEGER NOT NULL,
  event TEXT NOT NULL,
  sidecar TEXT NOT NULL,
  attempt INTEGER,
  outcome TEXT,
  duration_ms INTEGER
);
CREATE INDEX IF NOT EXISTS history_by_delivery ON history (delivery_id, n);
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

type Row = Record<string, unknown>;

interface PendingSubmit {
  readonly delivery: NewDelivery;
  readonly options: SubmitOptions;
  readonly resolve: (result: SubmitResult) => void;
  readonly reject: (error: Error) => void;
}

export class SqliteStore implements DeliveryStore {
  readonly path: string;
  private readonly db: DatabaseSync;
  private readonly statements = new Map<string, StatementSync>();
  private pending: PendingSubmit[] = [];
  private flushScheduled = false;

  /** Opens (creating when absent) the database at `path`; StoreUnavailableError when it cannot. */
  constructor(path: string, options: SqliteStoreOptions = {}) {
    this.path = path;
    try {
      mkdirSync(dirname(path), { recursive: true });
      this.db = new DatabaseSync(path, { timeout: options.busyTimeoutMs ?? 5000 });
      this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF;');
      this.transaction(() => {
        this.db.exec(SCHEMA);
        // A file written before the count existed gets it, counted once.
        if (this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'backlog'").get() === undefined) this.db.exec(BACKLOG_SCHEMA);
      });
    } catch (error) {
      throw unavailable(`cannot open the delivery store ${path}`, error);
    }
  }

  submit(delivery: NewDelivery, options: SubmitOptions): Promise<SubmitResult> {
    return new Promise((resolve, reject) => {
      this.pending.push({ delivery, options, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Writes every submission waiting, in one transaction, and answers each once it is committed. */
  private flush(): void {
    this.flushScheduled = false;
    const batch = this.pending;
    this.pending = [];
    const outcomes: (SubmitResult | Error)[] = [];
    try {
      this.transaction(() => {
        for (const item of batch) outcomes.push(this.submitOne(item));
      });
    } catch (error) {
      const failure = unavailable('the delivery store could not be written; nothing was accepted', error);
      for (const item of batch) item.reject(failure);
      return;
    }
    batch.forEach((item, i) => {
      const outcome = outcomes[i]!;
      if (outcome instanceof Error) item.reject(outcome);
      else item.resolve(outcome);
    });
  }

  private submitOne({ delivery: d, options }: PendingSubmit): SubmitResult | Error {
    const known = this.stmt('SELECT id FROM idempotency_keys WHERE integration = ? AND key = ?').get(d.integration, d.idempotencyKey) as
      | { id: string }
      | undefined;
    if (known) {
      const existing = this.read(known.id);
      if (existing && existing.expiresAt > options.now) return { delivery: existing, created: false };
    }
    if (this.backlog(d.integration) >= options.maxBacklog) return new BacklogFullError(d.integration, options.maxBacklog);
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

  async get(id: string): Promise<Delivery | undefined> {
    return this.guard(() => this.read(id));
  }

  async history(id: string): Promise<HistoryEntry[]> {
    return this.guard(() =>
      (this.stmt('SELECT at, event, sidecar, attempt, outcome, duration_ms FROM history WHERE delivery_id = ? ORDER BY n').all(id) as Row[]).map(
        toHistory,
      ),
    );
  }

  async list(filter: ListFilter): Promise<Delivery[]> {
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
    const sql = `SELECT * FROM deliveries ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq LIMIT ?`;
    return this.guard(() => (this.db.prepare(sql).all(...params) as Row[]).map(toDelivery));
  }

  async claim(integration: string, o: ClaimOptions): Promise<Delivery[]> {
    return this.guard(() =>
      this.transaction(() => {
        // Of the deliveries sharing an ordering key, only the oldest not ended may go.
        const rows = this.stmt(
          `SELECT d.id FROM deliveries d
           WHERE d.integration = ?
             AND ((d.state = 'queued' AND d.next_attempt_at <= ?) OR (d.state = 'delivering' AND d.lease_until <= ?))
             AND (d.ordering_key IS NULL OR NOT EXISTS (
               SELECT 1 FROM deliveries e
               WHERE e.integration = d.integration AND e.ordering_key = d.ordering_key AND e.seq < d.seq
                 AND e.state IN ('queued', 'delivering')))
           ORDER BY d.seq LIMIT ?`,
        ).all(integration, o.now, o.now, o.limit) as { id: string }[];
        const take = this.stmt("UPDATE deliveries SET state = 'delivering', owner = ?, lease_until = ?, updated_at = ? WHERE id = ?");
        return rows.map(({ id }) => {
          take.run(o.owner, o.now + o.leaseMs, o.now, id);
          return this.read(id)!;
        });
      }),
    );
  }

  async settle(id: string, owner: string, s: Settlement): Promise<Delivery> {
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
        this.stmt(
          `UPDATE deliveries SET state = ?, updated_at = ?, next_attempt_at = ?, attempts = ?, last_error = COALESCE(?, last_error),
             response_status = COALESCE(?, response_status), response_headers = COALESCE(?, response_headers),
             response_body = CASE WHEN ? THEN ? ELSE response_body END, response_truncated = COALESCE(?, response_truncated),
             ended_at = ?, dead_reason = ?, owner = NULL, lease_until = NULL,
             callback_state = CASE WHEN ? AND callback_url IS NOT NULL THEN 'pending' ELSE callback_state END,
             callback_next_at = CASE WHEN ? AND callback_url IS NOT NULL THEN ? ELSE callback_next_at END
           WHERE id = ?`,
        ).run(
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
        return this.read(id)!;
      }),
    );
  }

  async replay(id: string, o: { readonly now: number; readonly sidecar: string }): Promise<Delivery> {
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
        this.stmt(
          `UPDATE deliveries SET state = 'queued', updated_at = ?, next_attempt_at = ?, expires_at = ?, ended_at = NULL, dead_reason = NULL,
             callback_state = NULL, callback_attempts = 0, callback_next_at = NULL, callback_owner = NULL, callback_lease_until = NULL
           WHERE id = ?`,
        ).run(o.now, o.now, expiresAt, id);
        this.stmt('INSERT OR REPLACE INTO idempotency_keys (integration, key, id) VALUES (?, ?, ?)').run(current.integration, current.idempotencyKey, id);
        this.log(id, { at: o.now, event: 'replayed', sidecar: o.sidecar });
        return this.read(id)!;
      }),
    );
  }

  async purge(filter: PurgeFilter): Promise<number> {
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

  async compact(integration: string, endedBefore: number): Promise<number> {
    return this.guard(() => {
      const result = this.stmt(
        `UPDATE deliveries SET body = NULL, response_body = NULL, bodies_dropped = 1
         WHERE integration = ? AND ended_at < ? AND bodies_dropped = 0`,
      ).run(integration, endedBefore);
      return Number(result.changes);
    });
  }

  async stats(integration: string): Promise<BacklogStats> {
    return this.guard(() => {
      const oldest = this.stmt(`SELECT MIN(created_at) AS at FROM deliveries WHERE integration = ? AND ${LIVE}`).get(integration) as { at: number | null };
      const dead = this.stmt("SELECT COUNT(*) AS n FROM deliveries WHERE integration = ? AND state = 'dead'").get(integration) as { n: number };
      return { backlog: this.backlog(integration), oldestCreatedAt: oldest.at ?? undefined, dead: dead.n };
    });
  }

  async nextDueAt(integration: string): Promise<number | undefined> {
    return this.guard(() => {
      // Two minimums, each read off an index, rather than one over the whole backlog.
      const queued = this.stmt("SELECT MIN(next_attempt_at) AS at FROM deliveries WHERE integration = ? AND state = 'queued'").get(integration) as { at: number | null };
      const held = this.stmt("SELECT MIN(lease_until) AS at FROM deliveries WHERE integration = ? AND state = 'delivering'").get(integration) as { at: number | null };
      if (queued.at === null) return held.at ?? undefined;
      return held.at === null ? queued.at : Math.min(queued.at, held.at);
    });
  }

  async claimCallbacks(integration: string, o: ClaimOptions): Promise<Delivery[]> {
    return this.guard(() =>
      this.transaction(() => {
        const rows = this.stmt(
          `SELECT id FROM deliveries WHERE integration = ? AND callback_state = 'pending' AND callback_next_at <= ?
             AND (callback_lease_until IS NULL OR callback_lease_until <= ?)
           ORDER BY seq LIMIT ?`,
        ).all(integration, o.now, o.now, o.limit) as { id: string }[];
        const take = this.stmt('UPDATE deliveries SET callback_owner = ?, callback_lease_until = ? WHERE id = ?');
        return rows.map(({ id }) => {
          take.run(o.owner, o.now + o.leaseMs, id);
          return this.read(id)!;
        });
      }),
    );
  }

  async settleCallback(id: string, owner: string, s: CallbackSettlement): Promise<Delivery> {
    return this.guard(() =>
      this.transaction(() => {
        const row = this.stmt('SELECT callback_owner, callback_state, callback_attempts FROM deliveries WHERE id = ?').get(id) as
          | { callback_owner: string | null; callback_state: string | null; callback_attempts: number }
          | undefined;
        if (!row) throw new DeliveryNotFoundError(id);
        if (row.callback_state !== 'pending' || row.callback_owner !== owner) throw new LeaseLostError(id, owner);
        const attempts = row.callback_attempts + 1;
        this.log(id, { at: s.at, event: 'callback', sidecar: owner, attempt: attempts, outcome: s.outcome, durationMs: s.durationMs });
        this.stmt(
          `UPDATE deliveries SET callback_state = ?, callback_attempts = ?, callback_next_at = ?, callback_owner = NULL,
             callback_lease_until = NULL, updated_at = ? WHERE id = ?`,
        ).run(s.next.state, attempts, s.next.state === 'pending' ? s.next.at : null, s.at, id);
        return this.read(id)!;
      }),
    );
  }

  async close(): Promise<void> {
    // Submissions already promised an answer get it before the database goes.
    if (this.pending.length > 0) this.flush();
    if (this.db.isOpen) this.db.close();
  }

  private backlog(integration: string): number {
    const row = this.stmt('SELECT live FROM backlog WHERE integration = ?').get(integration) as { live: number } | undefined;
    return row?.live ?? 0;
  }

  private read(id: string): Delivery | undefined {
    const row = this.stmt('SELECT * FROM deliveries WHERE id = ?').get(id) as Row | undefined;
    return row && toDelivery(row);
  }

  private log(id: string, entry: HistoryEntry): void {
    this.stmt('INSERT INTO history (delivery_id, at, event, sidecar, attempt, outcome, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?)').run(
      id,
      entry.at,
      entry.event,
      entry.sidecar,
      entry.attempt ?? null,
      entry.outcome ?? null,
      entry.durationMs === undefined ? null : Math.round(entry.durationMs),
    );
  }

  private stmt(sql: string): StatementSync {
    let statement = this.statements.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  /** BEGIN IMMEDIATE takes the write lock up front, so two writers queue instead of failing mid-way. */
  private transaction<T>(body: () => T): T {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const result = body();
      this.db.exec('COMMIT');
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
