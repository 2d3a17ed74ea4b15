// A sidecar that cannot start (here: its admin port is taken) fails with the reason and releases what
// it had started before: the proxy port is free again, so a restart in the same process can bind it.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/runtime/logger.ts';
import { startSidecar } from '../../src/sidecar/index.ts';
import { docs, integration } from './harness.ts';

const listen = (server: Server, port = 0) =>
  new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
const close = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));

describe('startSidecar when a later step fails', () => {
  it('rejects with the reason and frees the proxy port it had bound', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'breakwater-start-failure-'));
    const taken = createServer();
    const probe = createServer();
    try {
      const configPath = join(dir, 'integrations.yaml');
      await writeFile(configPath, docs(integration('vendor', { upstream: { url: 'http://127.0.0.1:9' } })));
      const adminPort = await listen(taken);
      const port = await listen(probe);
      await close(probe);
      await expect(
        startSidecar({ configPath, port, adminPort, adminHost: '127.0.0.1', secretsDir: dir, logger: createLogger({ level: 'silent', name: 'test' }) }),
      ).rejects.toMatchObject({ code: 'EADDRINUSE' });
      expect(await listen(probe, port)).toBe(port);
    } finally {
      await close(probe);
      await close(taken);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
