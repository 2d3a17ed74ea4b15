// Turns the TypeBox schema into the CRD. The API server wants a structural OpenAPI v3.0 schema, which
// differs from the JSON Schema TypeBox writes: no `additionalProperties: false` next to `properties`
// (unknown fields are pruned, and `kubectl apply` rejects them under strict field validation), enums
// instead of unions of consts, boolean `exclusiveMinimum`, `x-kubernetes-list-type: set` instead of
// `uniqueItems`, and our rules as `x-kubernetes-validations`.
import type { TSchema } from '@sinclair/typebox';
import {
  API_VERSION,
  CRD_NAME,
  GROUP,
  KIND,
  LIST_KIND,
  PLURAL,
  SHORT_NAMES,
  SINGULAR,
  VERSION,
} from './names.ts';
import { RULES_KEY, type Rule } from './rules.ts';
import { ExternalIntegrationSpec, ExternalIntegrationStatus, NAME_RULE } from './schema.ts';

type JsonObject = Record<string, unknown>;

const PASSED_THROUGH = [
  'type', 'description', 'format', 'pattern', 'minimum', 'maximum', 'minLength', 'maxLength',
  'minItems', 'maxItems', 'maxProperties', 'enum', 'required',
] as const;

export function structural(schema: TSchema): JsonObject {
  const out: JsonObject = {};
  const consts = constBranches(schema);
  if (consts) return { type: 'string', enum: consts, ...(schema.description ? { description: schema.description } : {}) };
  for (const key of PASSED_THROUGH) if (schema[key] !== undefined) out[key] = schema[key];
  if (schema.const !== undefined) out.enum = [schema.const];
  if (typeof schema.exclusiveMinimum === 'number') Object.assign(out, { minimum: schema.exclusiveMinimum, exclusiveMinimum: true });
  if (typeof schema.exclusiveMaximum === 'number') Object.assign(out, { maximum: schema.exclusiveMaximum, exclusiveMaximum: true });
  if (schema.uniqueItems === true) out['x-kubernetes-list-type'] = 'set';
  if (schema.properties) {
    out.properties = Object.fromEntries(
      Object.entries(schema.properties as Record<string, TSchema>).map(([k, v]) => [k, structural(v)]),
    );
  }
  if (schema.items) out.items = structural(schema.items as TSchema);
  // A TypeBox Record is `patternProperties: {"^(.*)$": …}`: a map with free keys.
  if (schema.patternProperties) {
    const [valueSchema] = Object.values(schema.patternProperties as Record<string, TSchema>);
    if (valueSchema) out.additionalProperties = structural(valueSchema);
  }
  const rules = (schema[RULES_KEY] ?? []) as Rule[];
  if (rules.length > 0) out['x-kubernetes-validations'] = rules.map(validationOf);
  return out;
}

function constBranches(schema: TSchema): string[] | undefined {
  const anyOf = schema.anyOf as TSchema[] | undefined;
  if (!anyOf || !anyOf.every((b) => typeof b.const === 'string')) return undefined;
  return anyOf.map((b) => b.const as string);
}

function validationOf(rule: Omit<Rule, 'holds'>): JsonObject {
  return { rule: rule.cel, message: rule.message, ...(rule.fieldPath ? { fieldPath: rule.fieldPath } : {}) };
}

export function externalIntegrationCrd(): JsonObject {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: CRD_NAME },
    spec: {
      group: GROUP,
      names: { kind: KIND, listKind: LIST_KIND, plural: PLURAL, singular: SINGULAR, shortNames: [...SHORT_NAMES], categories: ['breakwater'] },
      scope: 'Namespaced',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: 'Upstream', type: 'string', jsonPath: '.spec.upstream.url' },
            { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
            { name: 'Vendor', type: 'string', jsonPath: '.status.conditions[?(@.type=="VendorHealthy")].status' },
            { name: 'Open', type: 'integer', jsonPath: '.status.circuit.open', description: 'Reporting pods whose breaker is open.' },
            { name: 'Pods', type: 'integer', jsonPath: '.status.pods.reporting', description: 'Pods reporting for this integration.' },
            { name: 'Reason', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].reason', priority: 1 },
            { name: 'Vendor-Reason', type: 'string', jsonPath: '.status.conditions[?(@.type=="VendorHealthy")].reason', priority: 1 },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: `${KIND} (${API_VERSION}): a third-party API and the resilience policy Breakwater's sidecar applies to every call to it.`,
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: structural(ExternalIntegrationSpec),
                status: structural(ExternalIntegrationStatus),
              },
              'x-kubernetes-validations': [validationOf(NAME_RULE)],
            },
          },
        },
      ],
    },
  };
}
