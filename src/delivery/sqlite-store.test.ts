import { readFileSync } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeStoreContract } from '../../test/support/delivery-store-contract.ts';
import { StoreUnavailableError } from './errors.ts';
import { RESTART_FRAMES } from './sqlite-checkpoints.ts';
import { SqliteStore } from './sqlite-store.ts';

describeStoreContract('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'breakwater-store-'));
  return {
    open: async () => new SqliteStore(join(dir, 'deliveries.sqlite')),
    destroy: () => rm(dir, { recursive: true, force: true }),
  };
});

describe('SqliteStore when the file cannot be written, or another process holds it', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'breakwater-store-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const delivery = (id: string) => ({
    id,
    integration: 'invoicing',
    idempotencyKey: id,
    request: { method: 'POST', path: '/v1/x', headers: [], body: Buffer.from('{}') },
    expiresAt: Date.now() + 60_000,
  });

  it('fails to open with store_unavailable where no file can be created', async () => {
    await writeFile(join(dir, 'not-a-dir'), '');
    expect(() => new SqliteStore(join(dir, 'not-a-dir', 'deliveries.sqlite'))).toThrow(StoreUnavailableError);
  });

  it('answers store_unavailable and stores nothing while another process holds the write lock', async () => {
    const path = join(dir, 'deliveries.sqlite');
    const store = new SqliteStore(path, { busyTimeoutMs: 100 });
    const other = new DatabaseSync(path);
    try {
      other.exec('BEGIN EXCLUSIVE');
      await expect(store.submit(delivery('a'), { now: Date.now(), maxBacklog: 10, sidecar: 't' })).rejects.toMatchObject({ code: 'store_unavailable' });
      other.exec('ROLLBACK');
      expect(await store.get('a')).toBeUndefined();
      expect((await store.submit(delivery('b'), { now: Date.now(), maxBacklog: 10, sidecar: 't' })).created).toBe(true);
    } finally {
      other.close();
      await store.close();
    }
  });

  it('keeps the database in WAL mode, which a second connection sees', async () => {
    const path = join(dir, 'deliveries.sqlite');
    const store = new SqliteStore(path);
    // Once its thread has opened the file (the constructor only checks that it can be).
    await store.stats('erp');
    const probe = new DatabaseSync(path);
    try {
      expect(probe.prepare('PRAGMA journal_mode').get()).toEqual({ journal_mode: 'wal' });
    } finally {
      probe.close();
      await store.close();
    }
  });

  it('waits for another process off the event loop: timers run, and the lock can be released meanwhile', async () => {
    const path = join(dir, 'deliveries.sqlite');
    const store = new SqliteStore(path, { busyTimeoutMs: 5000 });
    const other = new DatabaseSync(path);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    try {
      other.exec('BEGIN EXCLUSIVE');
      const submitted = store.submit(delivery('a'), { now: Date.now(), maxBacklog: 10, sidecar: 't' });
      await new Promise((resolve) => setTimeout(resolve, 300));
      // Had the submission blocked this thread, this line would run only after its busy timeout.
      other.exec('ROLLBACK');
      expect((await submitted).created).toBe(true);
      expect(ticks).toBeGreaterThanOrEqual(10);
    } finally {
      clearInterval(timer);
      other.close();
      await store.close();
    }
  });
});

describe('SqliteStore on a file written before the backlog was counted', () => {
  it('counts the backlog once when it opens the file, then keeps the count', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'breakwater-store-'));
    const path = join(dir, 'deliveries.sqlite');
    const d = (id: string) => ({ id, integration: 'invoicing', idempotencyKey: id, request: { method: 'POST', path: '/v1/x', headers: [], body: null }, expiresAt: Date.now() + 60_000 });
    const at = (now: number) => ({ now, maxBacklog: 3, sidecar: 't' });
    try {
      const first = new SqliteStore(path);
      for (const id of ['a', 'b']) await first.submit(d(id), at(Date.now()));
      await first.close();
      const old = new DatabaseSync(path);
      old.exec('DROP TRIGGER backlog_on_insert; DROP TRIGGER backlog_on_replay; DROP TRIGGER backlog_on_end; DROP TRIGGER backlog_on_delete; DROP TABLE backlog;');
      old.close();

      const store = new SqliteStore(path);
      try {
        expect((await store.stats('invoicing')).backlog).toBe(2);
        await store.submit(d('c'), at(Date.now()));
        await expect(store.submit(d('d'), at(Date.now()))).rejects.toMatchObject({ code: 'backlog_full' });
        const [claimed] = await store.claim('invoicing', { owner: 's', now: Date.now(), limit: 1, leaseMs: 1000 });
        await store.settle(claimed!.id, 's', { at: Date.now(), next: { state: 'dead', reason: 'refused' } });
        expect((await store.stats('invoicing')).backlog).toBe(2);
        await store.replay(claimed!.id, { now: Date.now(), sidecar: 'cli' });
        expect((await store.stats('invoicing')).backlog).toBe(3);
      } finally {
        await store.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('SqliteStore checkpoints, off the thread that commits', () => {
  it('keeps the WAL bounded under one commit after another, and loses nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'breakwater-store-'));
    const path = join(dir, 'deliveries.sqlite');
    const store = new SqliteStore(path);
    const body = Buffer.from('{"order":1}');
    try {
      // One at a time, so each is a commit of its own (10 pages: the row and its indexes, the key, the
      // history, the backlog count): left unchecked, 3,000 of them make a WAL of about 120 MB. As many
      // fsyncs one after another take seconds on a quiet disk, more on a busy one.
      for (let i = 0; i < 3000; i++) {
        const id = `d${i}`;
        await store.submit({ id, integration: 'erp', idempotencyKey: id, request: { method: 'POST', path: '/v1/x', headers: [], body }, expiresAt: Date.now() + 60_000 }, { now: Date.now(), maxBacklog: 10_000, sidecar: 't' });
      }
      // The WAL is started over from its beginning, never cut shorter, so its length now is the most it reached.
      const largest = (await stat(`${path}-wal`)).size;
      expect(largest).toBeLessThan(64 * 1024 * 1024);
      // And the checkpoints were the thread's: it lets the WAL reach its restart length, where SQLite's
      // own, in the commit, would have held it near 1,000 pages (4 MB).
      expect(largest).toBeGreaterThanOrEqual(RESTART_FRAMES * 4096);
      expect((await store.stats('erp')).backlog).toBe(3000);
      expect((await store.list({ limit: 1 }))[0]).toMatchObject({ id: 'd0', request: { body } });
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('SqliteStore on a file written before the schema had a version', () => {
  const schema0 = readFileSync(new URL('../../test/fixtures/delivery-store-schema-0.sql', import.meta.url), 'utf8');
  const T0 = 1_700_000_000_000;
  let dir: string;
  let path: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'breakwater-store-'));
    path = join(dir, 'deliveries.sqlite');
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  /** Two deliveries as the earlier version left them: one queued, one dead with its app not yet told. */
  function writeVersion0(): void {
    const db = new DatabaseSync(path);
    db.exec('PRAGMA journal_mode = WAL');
    db.exec(schema0);
    const insert = db.prepare(
      `INSERT INTO deliveries (id, integration, idempotency_key, method, path, headers, body, callback_url, expires_at, state,
         created_at, updated_at, next_attempt_at, attempts, ended_at, dead_reason, last_error, response_status, callback_state, callback_next_at)
       VALUES (?, 'invoicing', ?, 'POST', '/v1/invoices', '[["content-type","application/json"]]', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    insert.run('dead-1', 'key-dead', Buffer.from('{"n":1}'), 'http://127.0.0.1:9/cb', T0 + 3_600_000, 'dead', T0, T0 + 20, T0, 1, T0 + 20, 'refused', 'HTTP 422', 422, 'pending', T0 + 20);
    insert.run('queued-2', 'key-queued', Buffer.from('{"n":2}'), null, T0 + 3_600_000, 'queued', T0 + 10, T0 + 10, T0 + 10, 0, null, null, null, null, null, null);
    const key = db.prepare("INSERT INTO idempotency_keys (integration, key, id) VALUES ('invoicing', ?, ?)");
    key.run('key-dead', 'dead-1');
    key.run('key-queued', 'queued-2');
    const line = db.prepare('INSERT INTO history (delivery_id, at, event, sidecar, attempt, outcome, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?)');
    line.run('dead-1', T0, 'queued', 'old', null, null, null);
    line.run('queued-2', T0 + 10, 'queued', 'old', null, null, null);
    line.run('dead-1', T0 + 20, 'attempt', 'old', 1, '422', 35);
    line.run('dead-1', T0 + 20, 'dead', 'old', null, 'refused', null);
    db.close();
  }

  it('moves it to the current layout keeping every delivery, key, history line and count, and goes on from there', async () => {
    writeVersion0();
    const store = new SqliteStore(path);
    try {
      expect(await store.get('dead-1')).toMatchObject({ state: 'dead', deadReason: 'refused', attempts: 1, request: { body: Buffer.from('{"n":1}') } });
      expect((await store.history('dead-1')).map((h) => h.event)).toEqual(['queued', 'attempt', 'dead']);
      expect(await store.stats('invoicing')).toMatchObject({ backlog: 1, dead: 1, oldestCreatedAt: T0 + 10 });
      // The keys still name their deliveries: a resubmission is answered with the stored one.
      const again = await store.submit(
        { id: 'new', integration: 'invoicing', idempotencyKey: 'key-queued', request: { method: 'POST', path: '/v1/invoices', headers: [], body: null }, expiresAt: T0 + 3_600_000 },
        { now: T0 + 30, maxBacklog: 10, sidecar: 'new' },
      );
      expect(again).toMatchObject({ created: false, delivery: { id: 'queued-2' } });
      // The pending callback is found through the index that now holds only deliveries with one.
      expect((await store.claimCallbacks('invoicing', { owner: 'new', limit: 8, leaseMs: 1000, now: T0 + 40 })).map((d) => d.id)).toEqual(['dead-1']);
      // New history lines come after the old ones.
      const [claimed] = await store.claim('invoicing', { owner: 'new', limit: 1, leaseMs: 1000, now: T0 + 50 });
      await store.settle(claimed!.id, 'new', { at: T0 + 60, attempt: { outcome: '200', durationMs: 5 }, next: { state: 'delivered' } });
      expect((await store.history('queued-2')).map((h) => [h.event, h.sidecar])).toEqual([
        ['queued', 'old'],
        ['attempt', 'new'],
        ['delivered', 'new'],
      ]);
    } finally {
      await store.close();
    }
    // The same layout, every table, index and trigger, as a file the current version creates.
    const fresh = join(dir, 'fresh.sqlite');
    const created = new SqliteStore(fresh);
    await created.stats('invoicing');
    await created.close();
    const layout = (file: string) => {
      const db = new DatabaseSync(file);
      try {
        return { version: db.prepare('PRAGMA user_version').get(), objects: db.prepare('SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name').all() };
      } finally {
        db.close();
      }
    };
    const migrated = layout(path);
    expect(migrated.version).toEqual({ user_version: 1 });
    expect(migrated.objects.filter((o) => o.name === 'history' || o.name === 'idempotency_keys').map((o) => /WITHOUT ROWID\s*$/.test(String(o.sql)))).toEqual([true, true]);
    expect(migrated).toEqual(layout(fresh));
  });

  it('refuses a file a newer version wrote, and leaves it as it was', async () => {
    const db = new DatabaseSync(path);
    db.exec('CREATE TABLE later (x); PRAGMA user_version = 2');
    db.close();
    // Opening does not throw: the refusal comes with the first operation, from the store's thread.
    let store!: SqliteStore;
    expect(() => (store = new SqliteStore(path))).not.toThrow();
    await expect(store.stats('invoicing')).rejects.toMatchObject({ code: 'store_unavailable', message: expect.stringContaining('written by a newer version of Breakwater (schema 2') });
    await store.close();
    const after = new DatabaseSync(path);
    expect(after.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all()).toEqual([{ name: 'later' }]);
    after.close();
  });
});
