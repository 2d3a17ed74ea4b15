import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../runtime/logger.ts';
import { CertificateFilesError, readCertificateFiles, watchCertificateFiles, type CertificateFilesWatch } from './cert-files.ts';
import type { ServingCertificate } from './webhook.ts';

const logger = createLogger({ level: 'silent', name: 'cert-files-test' });
const dirs: string[] = [];
let watch: CertificateFilesWatch | undefined;

function dirWith(cert: string, key: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'bw-certs-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'tls.crt'), cert);
  writeFileSync(join(dir, 'tls.key'), key);
  return dir;
}

afterEach(() => {
  watch?.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('certificate files (cert-manager mode)', () => {
  it('reads tls.crt and tls.key', async () => {
    expect(await readCertificateFiles(dirWith('C1', 'K1'))).toEqual({ cert: 'C1', key: 'K1' });
  });

  it('fails with a typed error naming the files when they are missing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bw-certs-'));
    dirs.push(dir);
    await expect(readCertificateFiles(dir)).rejects.toBeInstanceOf(CertificateFilesError);
    await expect(readCertificateFiles(dir)).rejects.toThrow(/tls\.crt and tls\.key/);
  });

  it('reports new content and keeps the last good pair while the files are unreadable', async () => {
    const dir = dirWith('C1', 'K1');
    const seen: ServingCertificate[] = [];
    watch = await watchCertificateFiles(dir, (c) => seen.push(c), logger, 20);
    expect(watch.certificate).toEqual({ cert: 'C1', key: 'K1' });
    rmSync(join(dir, 'tls.key'));
    await new Promise((r) => setTimeout(r, 100));
    expect(seen).toEqual([]);
    writeFileSync(join(dir, 'tls.crt'), 'C2');
    writeFileSync(join(dir, 'tls.key'), 'K2');
    const deadline = Date.now() + 5_000;
    while (seen.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual([{ cert: 'C2', key: 'K2' }]);
  });
});
