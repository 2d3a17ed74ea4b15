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
      // One at a time, so each is a commit of its own (about 15 pages: the row and its indexes, the key,
      // the history): left unchecked, 3,000 of them make a WAL of about 180 MB. As many fsyncs one after
      // another take seconds on a quiet disk, more on a busy one.
      let largest = 0;
      for (let i = 0; i < 3000; i++) {
        const id = `d${i}`;
        await store.submit({ id, integration: 'erp', idempotencyKey: id, request: { method: 'POST', path: '/v1/x', headers: [], body }, expiresAt: Date.now() + 60_000 }, { now: Date.now(), maxBacklog: 10_000, sidecar: 't' });
        if (i % 100 === 99) largest = Math.max(largest, (await stat(`${path}-wal`)).size);
      }
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
