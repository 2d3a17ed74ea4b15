import { mkdir, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/runtime/logger.ts';
import { startSidecar } from '../../src/sidecar/index.ts';
import { startUpstream, type ScriptedUpstream } from '../support/upstream.ts';
import { docs, eventually, integration, sample, startHarness, type Harness } from './harness.ts';

const breaking = (url: string) =>
  integration('flaky', { upstream: { url }, retry: { maxAttempts: 1 }, circuitBreaker: { consecutiveFailures: 2, halfOpenAfter: '60s' } });

describe('hot reload', () => {
  let a: ScriptedUpstream;
  let b: ScriptedUpstream;
  let h: Harness;

  beforeAll(async () => {
    a = await startUpstream();
    b = await startUpstream();
    h = await startHarness(docs(breaking(a.url), integration('moving', { upstream: { url: a.url } })));
  });
  afterAll(async () => {
    await h.close();
    await a.close();
    await b.close();
  });

  it('picks up a change without a restart, keeps the breaker of an unchanged integration, and rejects an invalid file whole', async () => {
    a.otherwise({ status: 503 });
    await h.call('/flaky/x');
    await h.call('/flaky/x');
    expect((await h.call('/flaky/x')).json()).toMatchObject({ error: 'circuit_open' });

    // `moving` points at b now; `flaky` is unchanged and must stay open; `extra` is new.
    await h.writeConfig(docs(breaking(a.url), integration('moving', { upstream: { url: b.url } }), integration('extra', { upstream: { url: b.url } })));
    await eventually(async () => {
      expect((await h.call('/extra/x')).status).toBe(200);
    });
    const before = b.requests.length;
    expect((await h.call('/moving/x')).status).toBe(200);
    expect(b.requests.length).toBe(before + 1);
    expect((await h.call('/flaky/x')).json()).toMatchObject({ error: 'circuit_open' });

    // Invalid: the whole file is refused and the previous config keeps serving.
    await h.writeConfig(docs(breaking(a.url), 'apiVersion: breakwater.dev/v1alpha1\nkind: ExternalIntegration\nmetadata: { name: bad }\nspec: { upstream: { url: ftp://x } }\n'));
    await eventually(async () => {
      expect(sample(await h.metrics(), 'breakwater_config_reloads_total{result="failure"}')).toBe(1);
    });
    expect(h.logs.some((l) => l.level === 'error' && String(l.msg).includes('config rejected'))).toBe(true);
    expect((await h.call('/extra/x')).status).toBe(200);
    expect((await h.call('/bad/x')).status).toBe(404);
    expect(sample(await h.metrics(), 'breakwater_config_reloads_total{result="success"}')).toBe(2);

    // Retiring an integration removes its series.
    await h.writeConfig(docs(breaking(a.url)));
    await eventually(async () => {
      expect((await h.call('/extra/x')).status).toBe(404);
    });
    const metrics = await h.metrics();
    expect(metrics).not.toContain('integration="extra"');
    expect(metrics).toContain('integration="flaky"');
  });

  it('follows the ..data symlink swap Kubernetes uses for a mounted ConfigMap', async () => {
    const mount = join(h.dir, 'mounted');
    await mkdir(join(mount, '..v1'), { recursive: true });
    await writeFile(join(mount, '..v1', 'integrations.yaml'), integration('one', { upstream: { url: a.url } }));
    await symlink('..v1', join(mount, '..data'));
    await symlink('..data/integrations.yaml', join(mount, 'integrations.yaml'));
    const sidecar = await startSidecar({
      configPath: join(mount, 'integrations.yaml'),
      port: 0,
      adminPort: 0,
      adminHost: '127.0.0.1',
      secretsDir: h.secretsDir,
      logger: createLogger({ level: 'silent', name: 'test' }),
      configDebounceMs: 20,
    });
    try {
      expect(sidecar.integrations()).toEqual(['one']);
      await mkdir(join(mount, '..v2'));
      await writeFile(join(mount, '..v2', 'integrations.yaml'), integration('two', { upstream: { url: a.url } }));
      await symlink('..v2', join(mount, '..data_tmp'));
      await rename(join(mount, '..data_tmp'), join(mount, '..data'));
      await eventually(() => expect(sidecar.integrations()).toEqual(['two']));
    } finally {
      await sidecar.drain(1000);
    }
  });
});
