import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type ScriptedUpstream } from '../support/upstream.ts';
import { integration, startHarness, type Harness } from './harness.ts';

function tryConnect(host: string, port: number): Promise<'connected' | string> {
  return new Promise((resolve) => {
    const socket = connect(port, host, () => {
      socket.destroy();
      resolve('connected');
    });
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

describe('binding', () => {
  let vendor: ScriptedUpstream;
  let h: Harness;

  beforeAll(async () => {
    vendor = await startUpstream();
    h = await startHarness(integration('vendor', { upstream: { url: vendor.url } }));
  });
  afterAll(async () => {
    await h.close();
    await vendor.close();
  });

  it('binds the proxy to 127.0.0.1 only', async () => {
    expect(await tryConnect('127.0.0.1', h.sidecar.port)).toBe('connected');
    // Another loopback address reaches a socket bound to every interface, but not one bound to 127.0.0.1.
    expect(await tryConnect('127.0.0.2', h.sidecar.port)).toBe('ECONNREFUSED');
  });
});
