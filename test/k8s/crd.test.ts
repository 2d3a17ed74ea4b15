// The ExternalIntegration CRD as a real API server enforces it: structural schema, CEL rules, status
// subresource and printer columns, driven through the kubectl we built.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { INVALID_DOCUMENTS } from '../fixtures/invalid-documents.ts';
import { installCrd } from '../support/injection.ts';
import { kubectlFor, ok } from '../support/kube.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const kubectl = kubectlFor(inject('k8sBinDir'), inject('kubeconfig'));
const namespace = `crd-${Date.now().toString(36)}`;

interface Example {
  file: string;
  name: string;
  spec: Record<string, unknown>;
}

const examples: Example[] = readdirSync(`${root}examples`)
  .filter((f) => f.endsWith('.yaml'))
  .sort()
  .map((file) => {
    const doc = parse(readFileSync(`${root}examples/${file}`, 'utf8')) as { metadata: { name: string }; spec: Record<string, unknown> };
    return { file, name: doc.metadata.name, spec: doc.spec };
  });

beforeAll(async () => {
  await installCrd(kubectl);
  await ok(kubectl, ['create', 'namespace', namespace]);
});

afterAll(async () => {
  await kubectl(['delete', 'namespace', namespace, '--wait=false']);
});

describe('valid examples', () => {
  it('there are examples to apply', () => {
    expect(examples.length).toBeGreaterThan(0);
  });

  it.each(examples)('accepts examples/$file and keeps every field of its spec', async ({ file, name, spec }) => {
    await ok(kubectl, ['apply', '-n', namespace, '-f', `${root}examples/${file}`]);
    const stored = JSON.parse(await ok(kubectl, ['get', 'xi', name, '-n', namespace, '-o', 'json'])) as { spec: unknown };
    // A field the schema does not declare would be pruned silently; this catches it.
    expect(stored.spec).toMatchObject(spec);
  });
});

describe('invalid documents', () => {
  it.each(INVALID_DOCUMENTS)('rejects $name ($layer)', async ({ doc, layer, apiServer }) => {
    const r = await kubectl(['apply', '-n', namespace, '-f', '-'], JSON.stringify(doc));
    if (r.code === 0) {
      // Leave nothing behind that would turn the next document's create into an update.
      await kubectl(['delete', '-n', namespace, '-f', '-'], JSON.stringify(doc));
      expect.fail(`accepted: ${r.stdout}`);
    }
    // A document of another kind or version is refused before any schema: the server serves no such type.
    if (layer === 'document') expect(r.stderr).toMatch(/no matches for kind/);
    for (const text of apiServer) expect(r.stderr).toContain(text);
    // Only the useful messages: a CEL rule must not fail on a value the schema already rejected.
    expect(r.stderr).not.toMatch(/type conversion error|no such overload|evaluation error/i);
  });
});

describe('kubectl get xi', () => {
  it('prints the upstream, ready, fleet and age columns', async () => {
    const out = await ok(kubectl, ['get', 'xi', '-n', namespace]);
    const [header, ...rows] = out.trimEnd().split('\n');
    expect(header?.split(/\s+/)).toEqual(['NAME', 'UPSTREAM', 'READY', 'VENDOR', 'OPEN', 'PODS', 'AGE']);
    expect(rows).toHaveLength(examples.length);
    for (const { name, spec } of examples) {
      const row = rows.find((r) => r.startsWith(`${name} `));
      expect(row, `row for ${name}`).toBeDefined();
      expect(row?.split(/\s+/)[1]).toBe((spec.upstream as { url: string }).url);
    }
  });

  it('shows the Ready and VendorHealthy conditions and the fleet counts written through the status subresource', async () => {
    const [{ name }] = examples as [Example];
    const time = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const status = {
      status: {
        observedGeneration: 1,
        conditions: [
          { type: 'Ready', status: 'True', reason: 'Configured', message: '', lastTransitionTime: time },
          { type: 'VendorHealthy', status: 'False', reason: 'CircuitOpen', message: 'circuit open in 2/3 pods', lastTransitionTime: time },
        ],
        circuit: { open: 2, halfOpen: 0, closed: 1, since: time, lastError: { time, pod: 'checkout-1', error: 'vendor_5xx' } },
        pods: { reporting: 3, needRestart: 0 },
        lastMinute: { calls: 40, failures: 12 },
        backlog: 0,
      },
    };
    await ok(kubectl, ['patch', 'xi', name, '-n', namespace, '--subresource=status', '--type=merge', '-p', JSON.stringify(status)]);
    const wide = await ok(kubectl, ['get', 'xi', name, '-n', namespace, '-o', 'wide']);
    const [header, row] = wide.trimEnd().split('\n');
    expect(header?.split(/\s+/)).toEqual(['NAME', 'UPSTREAM', 'READY', 'VENDOR', 'OPEN', 'PODS', 'REASON', 'VENDOR-REASON', 'AGE']);
    expect(row?.split(/\s+/).slice(2, 8)).toEqual(['True', 'False', '2', '3', 'Configured', 'CircuitOpen']);
    // Nothing of it was pruned: the schema holds every field the fleet controller writes.
    const stored = JSON.parse(await ok(kubectl, ['get', 'xi', name, '-n', namespace, '-o', 'json'])) as { status: unknown };
    expect(stored.status).toEqual(status.status);
  });
});
