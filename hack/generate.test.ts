import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

// A copy of the parts of the repo the generator reads, where the schema can be changed freely.
const work = mkdtempSync(join(tmpdir(), 'breakwater-gen-'));
for (const path of ['src', 'hack/generate.ts', 'hack/metrics-reference.ts', 'crds', 'charts/breakwater/crds', 'docs', 'package.json']) cpSync(path, join(work, path), { recursive: true });
symlinkSync(resolve('node_modules'), join(work, 'node_modules'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const check = () => spawnSync(process.execPath, ['hack/generate.ts', '--check'], { cwd: work, encoding: 'utf8' });

describe('the CRD drift check', () => {
  it('passes on the committed CRD', () => {
    expect(check().status).toBe(0);
  });

  // Three runs of the generator, each a Node process: seconds on a busy machine, past vitest's default 5 s.
  it('fails when the schema changes without regenerating, and passes after `npm run gen`', { timeout: 30_000 }, () => {
    const schema = join(work, 'src/api/schema.ts');
    const before = readFileSync(schema, 'utf8');
    writeFileSync(schema, before.replace('minimum: 1,\n        maximum: 10,', 'minimum: 1,\n        maximum: 12,'));
    expect(readFileSync(schema, 'utf8')).not.toBe(before);

    const stale = check();
    expect(stale.status).toBe(1);
    expect(stale.stderr).toContain('crds/breakwater.dev_externalintegrations.yaml');
    // The chart's copy of the CRD and the reference's field table are derived from the same schema.
    expect(stale.stderr).toContain('charts/breakwater/crds/breakwater.dev_externalintegrations.yaml');
    expect(stale.stderr).toContain('docs/reference.md');
    expect(stale.stderr).toContain('npm run gen');

    execFileSync(process.execPath, ['hack/generate.ts'], { cwd: work });
    expect(check().status).toBe(0);
    expect(readFileSync(join(work, 'crds/breakwater.dev_externalintegrations.yaml'), 'utf8')).toContain('maximum: 12');
    expect(readFileSync(join(work, 'charts/breakwater/crds/breakwater.dev_externalintegrations.yaml'), 'utf8')).toContain('maximum: 12');
    expect(readFileSync(join(work, 'docs', 'reference.md'), 'utf8')).toMatch(/`spec\.retry\.backoff\.multiplier` .*\(min 1, max 12\)/);
  });
});
