// `breakwater deliveries` as a user runs it, as a process, against the SQLite file a running sidecar
// writes: dead letters listed, replayed under the same id and key, shown with their history, exported
// and purged; bad usage and a missing store get their exit codes.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type ScriptedUpstream } from '../support/upstream.ts';
import { eventually, integration, startHarness, type Harness } from './harness.ts';

const CLI = fileURLToPath(new URL('../../cmd/breakwater.ts', import.meta.url));

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'deliveries', ...args], { timeout: 15_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('breakwater deliveries', () => {
  let vendor: ScriptedUpstream;
  let dir: string;
  let store: string;
  let h: Harness;

  beforeAll(async () => {
    vendor = await startUpstream();
    dir = await mkdtemp(join(tmpdir(), 'breakwater-cli-'));
    store = `sqlite:${join(dir, 'deliveries.sqlite')}`;
    h = await startHarness(
      integration('courier', { upstream: { url: vendor.url }, retry: { backoff: { initial: '10ms', max: '20ms' } }, delivery: { maxBackoff: '50ms' } }),
      { deliveryStore: store },
    );
  });
  afterAll(async () => {
    await h.close();
    await vendor.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('lists a dead letter, replays it with the same id and key, and shows its whole history', async () => {
    vendor.otherwise({ status: 409, body: 'duplicate shipment' });
    const accepted = await h.call('/courier/v1/shipments', { method: 'POST', headers: { prefer: 'respond-async', 'idempotency-key': 'awb-1001' }, body: '{"awb":1001}' });
    const id = (accepted.json() as { delivery: string }).delivery;
    await eventually(async () => expect((await h.call(`/_breakwater/deliveries/${id}`)).json()).toMatchObject({ state: 'dead' }));

    const listed = await cli('list', '--store', store, '--state', 'dead');
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`^ID\\s+INTEGRATION\\s+STATE\\s+ATTEMPTS\\s+CREATED\\s+LAST ERROR\\n${id}\\s+courier\\s+dead \\(refused\\)\\s+1\\s+`));
    expect(listed.stdout).toContain('the vendor answered 409');

    vendor.otherwise({ status: 201, headers: { 'content-type': 'text/plain' }, body: 'created' });
    const replayed = await cli('replay', '--store', store, id);
    expect(replayed).toMatchObject({ code: 0, stdout: `replayed ${id} (courier, idempotency key awb-1001)\n` });
    await eventually(async () => expect((await h.call(`/_breakwater/deliveries/${id}`)).json()).toMatchObject({ state: 'delivered', attempts: 2 }));
    expect(vendor.requests.map((r) => r.headers['idempotency-key'])).toEqual(['awb-1001', 'awb-1001']);

    const shown = await cli('show', '--store', store, id);
    expect(shown.code).toBe(0);
    const view = JSON.parse(shown.stdout) as { history: { event: string; outcome?: string }[]; response: { status: number; body: string } };
    expect(view.history.map((e) => [e.event, e.outcome])).toEqual([
      ['queued', undefined],
      ['attempt', '409'],
      ['dead', 'refused'],
      ['replayed', undefined],
      ['attempt', '201'],
      ['delivered', undefined],
    ]);
    expect(view.response).toMatchObject({ status: 201, body: 'created' });

    const exported = await cli('export', '--store', store, '--since', '1h');
    expect(exported.code).toBe(0);
    const lines = exported.stdout.trim().split('\n').map((l) => JSON.parse(l) as { delivery: string });
    expect(lines.map((l) => l.delivery)).toContain(id);

    expect(await cli('purge', '--store', store, '--state', 'delivered', '--older-than', '1h')).toMatchObject({ code: 0, stdout: 'purged 0 delivered deliveries\n' });
    expect(await cli('purge', '--store', store, '--state', 'delivered', '--older-than', '0.001s')).toMatchObject({ code: 0, stdout: 'purged 1 delivered delivery\n' });
    expect(await cli('show', '--store', store, id)).toMatchObject({ code: 1, stderr: `delivery_not_found: no delivery "${id}"\n` });
  });

  it('says when list shows fewer than there are', async () => {
    vendor.otherwise({ status: 201 });
    for (const key of ['awb-2001', 'awb-2002']) {
      const accepted = await h.call('/courier/v1/shipments', { method: 'POST', headers: { prefer: 'respond-async', 'idempotency-key': key }, body: '{}' });
      expect(accepted.status).toBe(202);
    }
    const listed = await cli('list', '--store', store, '--limit', '1');
    expect(listed.code).toBe(0);
    expect(listed.stdout.trim().split('\n')).toHaveLength(2);
    expect(listed.stderr).toBe('… and more: the oldest 1 are shown; raise --limit, or narrow with --since, --state or --integration\n');
    expect((await cli('list', '--store', store, '--limit', '2')).stderr).toBe('');
    expect(await cli('list', '--store', store, '--limit', '0')).toMatchObject({ code: 64, stderr: '--limit must be 1 or more, got 0\n' });
  });

  it('says what is wrong, with a stable exit code', async () => {
    expect(await cli('replay', '--store', store)).toMatchObject({ code: 64 });
    // In bulk, only dead letters: every delivered call sent again would be one flag away.
    expect(await cli('replay', '--store', store, '--state', 'delivered')).toMatchObject({ code: 64, stderr: '--state must be one of dead, got "delivered"\n' });
    expect(await cli('list', '--store', 'redis://127.0.0.1:abc')).toMatchObject({ code: 64 });
    // Not a year-2001 date, as Date.parse alone would read it.
    expect(await cli('list', '--store', store, '--since', '5')).toMatchObject({ code: 64, stderr: '--since must be an ISO time or an age like 2h or 7d, got "5"\n' });
    expect(await cli('purge', '--store', store, '--state', 'queued', '--older-than', '1d')).toMatchObject({ code: 64 });
    expect(await cli('frobnicate')).toMatchObject({ code: 64 });
    const missing = await cli('list', '--store', `sqlite:${join(dir, 'elsewhere.sqlite')}`);
    expect(missing.code).toBe(69);
    expect(missing.stderr).toContain(`store_unavailable: there is no delivery store at ${join(dir, 'elsewhere.sqlite')}`);
    const help = await cli('replay', '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('usage: breakwater deliveries replay [flags]');
  });
});
