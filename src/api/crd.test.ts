import { Ajv } from 'ajv';
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { INVALID_DOCUMENTS } from '../../test/fixtures/invalid-documents.ts';
import { externalIntegrationCrd } from './crd.ts';
import { validateIntegration } from './validate.ts';

type Node = Record<string, unknown>;

const crd = externalIntegrationCrd() as {
  spec: { versions: [{ schema: { openAPIV3Schema: Node } }] };
};
const openApi = crd.spec.versions[0].schema.openAPIV3Schema;

/** OpenAPI v3.0 as the API server reads it → JSON Schema as ajv reads it, without the CEL. */
function toJsonSchema(node: Node): Node {
  const out: Node = {};
  for (const [key, value] of Object.entries(node)) {
    if (key.startsWith('x-kubernetes-')) continue;
    if (key === 'exclusiveMinimum' || key === 'exclusiveMaximum') continue;
    if (key === 'properties') out.properties = Object.fromEntries(Object.entries(value as Record<string, Node>).map(([k, v]) => [k, toJsonSchema(v)]));
    else if (key === 'items' || key === 'additionalProperties') out[key] = toJsonSchema(value as Node);
    else out[key] = value;
  }
  if (node.exclusiveMinimum === true) Object.assign(out, { exclusiveMinimum: node.minimum, minimum: undefined });
  if (node.exclusiveMaximum === true) Object.assign(out, { exclusiveMaximum: node.maximum, maximum: undefined });
  if (node['x-kubernetes-list-type'] === 'set') out.uniqueItems = true;
  return JSON.parse(JSON.stringify(out)) as Node;
}

const structural = new Ajv({ strict: false, allErrors: true }).compile(toJsonSchema(openApi));

/** Every CEL rule message in the CRD, by the dotted schema path it sits on. */
function celMessages(node: Node, path: string, out: Map<string, string[]>): Map<string, string[]> {
  for (const rule of (node['x-kubernetes-validations'] ?? []) as { message: string; fieldPath?: string }[]) {
    const at = path + (rule.fieldPath ?? '');
    out.set(at, [...(out.get(at) ?? []), rule.message]);
  }
  for (const [key, child] of Object.entries((node.properties ?? {}) as Record<string, Node>)) celMessages(child, path ? `${path}.${key}` : key, out);
  if (node.items) celMessages(node.items as Node, `${path}[]`, out);
  return out;
}
const RULES = celMessages(openApi, '', new Map());

describe('the generated CRD', () => {
  it('is structural: every node has a type, and no object mixes properties with additionalProperties', () => {
    const walk = (node: Node, path: string): string[] => [
      ...(node.type ? [] : [`${path}: no type`]),
      ...(node.properties && node.additionalProperties !== undefined ? [`${path}: properties and additionalProperties`] : []),
      ...Object.entries((node.properties ?? {}) as Record<string, Node>).flatMap(([k, v]) => walk(v, `${path}.${k}`)),
      ...(node.items ? walk(node.items as Node, `${path}[]`) : []),
      ...(node.additionalProperties ? walk(node.additionalProperties as Node, `${path}{}`) : []),
    ];
    expect(walk(openApi, '')).toEqual([]);
  });

  it('is what crds/ holds', () => {
    const committed = parse(readFileSync('crds/breakwater.dev_externalintegrations.yaml', 'utf8'));
    expect(committed).toEqual(crd);
  });
});

describe('the validator and the CRD agree', () => {
  it.each(readdirSync('examples').filter((f) => f.endsWith('.yaml')))('both accept examples/%s', (file) => {
    for (const doc of readFileSync(`examples/${file}`, 'utf8').split(/^---$/m).map((d) => parse(d)).filter(Boolean)) {
      expect(validateIntegration(doc).ok).toBe(true);
      expect(structural(doc), JSON.stringify(structural.errors)).toBe(true);
    }
  });

  const byLayer = (layer: string) => INVALID_DOCUMENTS.filter((f) => f.layer === layer).map((f) => [f.name, f] as const);

  it.each(byLayer('schema'))('both reject %s, at the same field', (_, fixture) => {
    expect(structural(fixture.doc)).toBe(false);
    const paths = (structural.errors ?? []).map((e) =>
      (e.instancePath + (e.params && 'missingProperty' in e.params ? `/${String(e.params.missingProperty)}` : ''))
        .split('/').slice(1).reduce((p, part) => (/^\d+$/.test(part) ? `${p}[${part}]` : p ? `${p}.${part}` : part), ''),
    );
    for (const issue of fixture.issues) expect(paths).toContain(issue.path);
  });

  it.each(byLayer('cel'))('%s passes the structural schema and fails a CEL rule with the validator\'s message', (_, fixture) => {
    expect(structural(fixture.doc), JSON.stringify(structural.errors)).toBe(true);
    for (const issue of fixture.issues) {
      const schemaPath = issue.path.replace(/\[\d+\]/g, '[]');
      const messages = schemaPath === 'metadata.name' ? (RULES.get('') ?? []).map((m) => m.replace(/^metadata\.name /, '')) : (RULES.get(schemaPath) ?? []);
      expect(messages).toContain(issue.message);
    }
  });

  it.each(byLayer('field'))('%s is an unknown field the structural schema would prune', (_, fixture) => {
    expect(structural(fixture.doc)).toBe(true);
    expect(validateIntegration(fixture.doc).ok).toBe(false);
  });
});

describe('field descriptions (what kubectl explain shows)', () => {
  const spec = (openApi.properties as Record<string, Node>).spec!.properties as Record<string, Node>;

  it('says the rate limit is per pod by default, so replicas multiply it, unless its scope is fleet', () => {
    expect(spec.rateLimit!.description).toMatch(/per pod/);
    expect(spec.rateLimit!.description).toMatch(/replica/);
    expect(spec.rateLimit!.description).toMatch(/scope fleet the replicas share it/);
  });
});
