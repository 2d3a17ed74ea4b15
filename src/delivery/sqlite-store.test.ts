import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeStoreContract } from '../../test/support/delivery-store-contract.ts';
import { StoreUnavailableError } from './errors.ts';
import { SqliteStore } from './sqlite-store.ts';

describeStoreContract('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'breakwater-store-'));
  return {
    open: async () => new SqliteStore(join(dir, 'deliveries.sqlite')),
    destroy: () => rm(dir, { recursive: true, force: true }),
  };
});

describe('SqliteStore when the file cannot be written', () => {
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
    const probe = new DatabaseSync(path);
    try {
      expect(probe.prepare('PRAGMA journal_mode').get()).toEqual({ journal_mode: 'wal' });
    } finally {
      probe.close();
      await store.close();
    }
  });
});
