import { mkdir, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type ScriptedUpstream } from '../support/upstream.ts';
import { eventually, integration, startHarness, type Harness } from './harness.ts';

const FIRST = 'sk_live_first_0123456789';
const SECOND = 'sk_live_second_9876543210';

describe('credentials', () => {
  let vendor: ScriptedUpstream;
  let h: Harness;
  let secretDir: string;

  beforeAll(async () => {
    vendor = await startUpstream();
    h = await startHarness(
      integration('stripe', {
        upstream: { url: vendor.url },
        auth: { header: 'Authorization', prefix: 'Bearer ', secretRef: { name: 'stripe-key', key: 'token' } },
      }),
    );
    secretDir = join(h.secretsDir, 'stripe-key');
  });
  afterAll(async () => {
    await h.close();
    await vendor.close();
  });

  /** Lays the Secret out as a kubelet does, and rotates it the same way: key → ..data/key, ..data → a version. */
  async function mountSecret(version: string, value: string): Promise<void> {
    await mkdir(join(secretDir, version), { recursive: true });
    await writeFile(join(secretDir, version, 'token'), `${value}\n`);
    await symlink(version, join(secretDir, '..data_tmp'));
    await rename(join(secretDir, '..data_tmp'), join(secretDir, '..data'));
    await symlink('..data/token', join(secretDir, 'token')).catch(() => {});
  }

  it('injects the credential from the mounted Secret, replaces the caller’s, re-reads it on rotation, and never logs it', async () => {
    await mountSecret('..v1', FIRST);
    await eventually(async () => {
      await h.call('/stripe/v1/charges', { headers: { authorization: 'Bearer from-the-app' } });
      expect(vendor.requests.at(-1)!.headers.authorization).toBe(`Bearer ${FIRST}`);
    });

    await mountSecret('..v2', SECOND);
    await eventually(async () => {
      await h.call('/stripe/v1/charges');
      expect(vendor.requests.at(-1)!.headers.authorization).toBe(`Bearer ${SECOND}`);
    });

    const logged = JSON.stringify(h.logs);
    expect(h.logs.some((l) => l.msg === 'call')).toBe(true);
    expect(logged).not.toContain(FIRST);
    expect(logged).not.toContain(SECOND);
    expect(logged).not.toContain('from-the-app');
  });
});
