import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSidecar, runSidecar } from '../support/sidecar-process.ts';
import { startUpstream, type ScriptedUpstream } from '../support/upstream.ts';
import { eventually, integration } from './harness.ts';

describe('shutdown and startup', () => {
  let vendor: ScriptedUpstream;
  let dir: string;

  beforeAll(async () => {
    vendor = await startUpstream();
    dir = await mkdtemp(join(tmpdir(), 'breakwater-shutdown-'));
  });
  afterAll(async () => {
    await vendor.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('on SIGTERM stops accepting, finishes the call in flight, and exits 0', async () => {
    const config = join(dir, 'ok.yaml');
    await writeFile(config, integration('vendor', { upstream: { url: vendor.url } }));
    const sidecar = await spawnSidecar(['--config', config, '--port', '0', '--admin-port', '0', '--secrets-dir', dir]);
    let answer!: () => void;
    vendor.script((_req, res) => {
      answer = () => res.end('finished');
    });
    const inFlight = request(`http://127.0.0.1:${sidecar.port}/vendor/slow`);
    await eventually(() => expect(vendor.inFlight).toBe(1));
    sidecar.child.kill('SIGTERM');
    // New connections are refused while the call in flight is still waiting for the vendor's answer.
    await eventually(async () => {
      await expect(request(`http://127.0.0.1:${sidecar.port}/vendor/x`)).rejects.toThrow(/ECONNREFUSED/);
    });
    expect(vendor.inFlight).toBe(1);
    answer();
    const res = await inFlight;
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('finished');
    expect(await sidecar.exited).toBe(0);
    expect(sidecar.output()).toContain('"msg":"drained"');
  });

  it('says which port it could not bind and why, and exits 1, without a stack trace', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const port = (taken.address() as AddressInfo).port;
      const config = join(dir, 'ok.yaml');
      await writeFile(config, integration('vendor', { upstream: { url: vendor.url } }));
      const { code, output } = await runSidecar(['--config', config, '--port', String(port), '--admin-port', '0', '--data-dir', dir]);
      expect(code).toBe(1);
      expect(output).toContain(`cannot listen on 127.0.0.1:${port}: the port is in use by another process`);
      expect(output).not.toMatch(/^\s+at /m);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it('refuses to start on an invalid config, saying why, with a non-zero exit', async () => {
    const config = join(dir, 'bad.yaml');
    await writeFile(config, integration('vendor', { upstream: { url: vendor.url }, retry: { maxAttempts: 0 } }));
    const { code, output } = await runSidecar(['--config', config, '--port', '0', '--admin-port', '0']);
    expect(code).not.toBe(0);
    expect(output).toContain('spec.retry.maxAttempts');
  });
});
