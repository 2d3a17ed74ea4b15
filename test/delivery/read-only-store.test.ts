// A sidecar whose SQLite file cannot be written (a volume mounted read-only, a file owned by another
// user): each Prefer: respond-async call is answered 503 store_unavailable and none is acknowledged;
// once the file is writable again the sidecar opens it and delivers what it accepts from then on.
// When the tests run as root, who may write any file, the sidecar runs as the unprivileged `nobody`.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../src/delivery/sqlite-store.ts';
import { docs, integration } from '../sidecar/harness.ts';
import { startKeyedVendor, type KeyedVendor } from '../support/keyed-vendor.ts';
import { spawnSidecar, type SidecarProcess } from '../support/sidecar-process.ts';

const NOBODY = 65534;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a read-only delivery store', () => {
  let vendor: KeyedVendor | undefined;
  let sidecar: SidecarProcess | undefined;
  let dir: string | undefined;

  afterEach(async () => {
    sidecar?.child.kill('SIGKILL');
    await sidecar?.exited;
    await vendor?.close();
    if (dir) {
      await chmod(dir, 0o700);
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('answers 503 store_unavailable and acknowledges nothing; writable again, it accepts and delivers', async () => {
    vendor = await startKeyedVendor();
    dir = await mkdtemp(join(tmpdir(), 'breakwater-read-only-'));
    const path = join(dir, 'deliveries.sqlite');
    // A store a sidecar left behind, then made read-only with its directory (where the WAL would go).
    await new SqliteStore(path).close();
    const config = join(dir, 'integrations.yaml');
    await writeFile(config, docs(integration('erp', { upstream: { url: vendor.url }, delivery: {} })));
    await chmod(path, 0o444);
    await chmod(config, 0o444);
    await chmod(dir, 0o555);
    const user = process.getuid?.() === 0 ? { uid: NOBODY, gid: NOBODY } : {};
    sidecar = await spawnSidecar(['--config', config, '--port', '0', '--admin-port', '0', '--delivery-store', `sqlite:${path}`, '--secrets-dir', dir], user);
    const pool = new Pool(`http://127.0.0.1:${sidecar.port}`, { connections: 1 });
    const send = async (key: string) => {
      const res = await pool.request({ path: '/erp/v1/orders', method: 'POST', headers: { prefer: 'respond-async', 'idempotency-key': key }, body: `{"key":"${key}"}` });
      return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
    };
    try {
      expect(await send('while-read-only')).toEqual({
        status: 503,
        body: { error: 'store_unavailable', integration: 'erp', message: 'the delivery store could not be written; the call was not accepted' },
      });

      await chmod(dir, 0o777);
      await chmod(path, 0o666);
      const after = await send('after');
      expect(after.status).toBe(202);
      const deadline = Date.now() + 15_000;
      while (!vendor.processed.has('after') && Date.now() < deadline) await sleep(100);
      expect([...vendor.processed.keys()]).toEqual(['after']);
      const store = new SqliteStore(path);
      try {
        expect((await store.list({})).map((d) => d.idempotencyKey)).toEqual(['after']);
      } finally {
        await store.close();
      }
    } finally {
      await pool.close();
    }
  });
});
