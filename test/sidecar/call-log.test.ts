import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSidecar, type SidecarProcess } from '../support/sidecar-process.ts';
import { startUpstream, type ScriptedUpstream } from '../support/upstream.ts';
import { eventually, integration } from './harness.ts';

describe('the call log of a running sidecar', () => {
  let vendor: ScriptedUpstream;
  let dir: string;
  let sidecar: SidecarProcess;

  beforeAll(async () => {
    vendor = await startUpstream();
    dir = await mkdtemp(join(tmpdir(), 'breakwater-call-log-'));
    const config = join(dir, 'integrations.yaml');
    await writeFile(config, integration('vendor', { upstream: { url: vendor.url } }));
    sidecar = await spawnSidecar(['--config', config, '--port', '0', '--admin-port', '0', '--secrets-dir', dir]);
  });
  afterAll(async () => {
    sidecar.child.kill('SIGTERM');
    await sidecar.exited;
    await vendor.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('shows a lone call within seconds, though lines are written in batches', async () => {
    const res = await request(`http://127.0.0.1:${sidecar.port}/vendor/lone`, { headers: { 'x-request-id': 'lone-call' } });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    await eventually(() => expect(sidecar.output()).toContain('"requestId":"lone-call"'), 3000);
    const line = sidecar.output().split('\n').find((l) => l.includes('"requestId":"lone-call"'));
    expect(JSON.parse(line!)).toMatchObject({ level: 'info', integration: 'vendor', path: '/lone', status: 200, outcome: 'upstream', attempts: 1, msg: 'call' });
  });
});
