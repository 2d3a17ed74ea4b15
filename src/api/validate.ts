// The runtime validator: every problem in a document, each with its field path, in the words a user
// of `kubectl apply` would expect. Structural checks come from the compiled schema; the cross-field
// rules attached to schema nodes run afterwards on nodes that passed them.
import type { TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors';
import { MESSAGE_KEY, RULES_KEY, type Rule } from './rules.ts';
import { ExternalIntegration } from './schema.ts';

export interface ValidationIssue {
  /** Dotted field path as the API server writes it: `spec.retry.retryOn[1]`. */
  readonly path: string;
  readonly message: string;
}

export type ValidationResult =
  | { readonly ok: true; readonly value: ExternalIntegration }
  | { readonly ok: false; readonly issues: readonly ValidationIssue[] };

const compiled = TypeCompiler.Compile(ExternalIntegration);

export function validateIntegration(doc: unknown): ValidationResult {
  if (compiled.Check(doc)) {
    const issues = ruleIssues(ExternalIntegration, doc, '', new Set());
    return issues.length === 0 ? { ok: true, value: doc } : { ok: false, issues };
  }
  const issues: ValidationIssue[] = [];
  const seen = new Set<string>();
  for (const error of compiled.Errors(doc)) {
    const path = dotted(error.path);
    // One message per field: a missing required string also fails "Expected string".
    if (seen.has(path)) continue;
    seen.add(path);
    issues.push({ path, message: describe(error) });
  }
  issues.push(...ruleIssues(ExternalIntegration, doc, '', seen));
  return { ok: false, issues };
}

/** `/spec/retry/retryOn/1` → `spec.retry.retryOn[1]`. */
function dotted(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~'))
    .reduce((path, part) => (/^\d+$/.test(part) ? `${path}[${part}]` : path ? `${path}.${part}` : part), '');
}

function describe(error: ValueError): string {
  const schema = error.schema as Record<string, unknown>;
  const custom = schema[MESSAGE_KEY];
  switch (error.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return 'is required';
    case ValueErrorType.ObjectAdditionalProperties:
      return 'unknown field';
    case ValueErrorType.Union:
      return typeof custom === 'string' ? custom : `must be one of: ${literals(schema).join(', ')}`;
    case ValueErrorType.Literal:
    case ValueErrorType.StringPattern:
      return typeof custom === 'string' ? custom : `must match ${String(schema.pattern)}`;
    case ValueErrorType.String:
      return 'must be a string';
    case ValueErrorType.Integer:
      return 'must be an integer';
    case ValueErrorType.Number:
      return 'must be a number';
    case ValueErrorType.Boolean:
      return 'must be true or false';
    case ValueErrorType.Object:
      return 'must be an object';
    case ValueErrorType.Array:
      return 'must be a list';
    case ValueErrorType.ArrayUniqueItems:
      return 'must not repeat a value';
    case ValueErrorType.ArrayMaxItems:
      return `must have at most ${String(schema.maxItems)} items`;
    case ValueErrorType.NumberMinimum:
    case ValueErrorType.IntegerMinimum:
      return `must be at least ${String(schema.minimum)}`;
    case ValueErrorType.NumberMaximum:
    case ValueErrorType.IntegerMaximum:
      return `must be at most ${String(schema.maximum)}`;
    case ValueErrorType.NumberExclusiveMinimum:
    case ValueErrorType.IntegerExclusiveMinimum:
      return `must be greater than ${String(schema.exclusiveMinimum)}`;
    case ValueErrorType.NumberExclusiveMaximum:
    case ValueErrorType.IntegerExclusiveMaximum:
      return `must be less than ${String(schema.exclusiveMaximum)}`;
    case ValueErrorType.StringMaxLength:
      return `must be at most ${String(schema.maxLength)} characters`;
    case ValueErrorType.ObjectMaxProperties:
      return `must have at most ${String(schema.maxProperties)} entries`;
    default:
      return error.message;
  }
}

function literals(schema: Record<string, unknown>): string[] {
  const branches = (schema.anyOf ?? []) as { const?: unknown }[];
  return branches.map((branch) => String(branch.const));
}

/** Runs the rules of every node the value reaches, except nodes whose own subtree failed structurally. */
function ruleIssues(schema: TSchema, value: unknown, path: string, failed: ReadonlySet<string>): ValidationIssue[] {
  if (value === undefined) return [];
  const broken = [...failed].some((p) => isWithin(p, path));
  const own = broken
    ? []
    : ((schema[RULES_KEY] ?? []) as Rule[])
        .filter((rule) => !rule.holds(value))
        .map((rule) => ({ path: path + (rule.fieldPath ?? ''), message: rule.message }));
  return [...own, ...childIssues(schema, value, path, failed)];
}

function isWithin(path: string, ancestor: string): boolean {
  return ancestor === '' || path === ancestor || path.startsWith(`${ancestor}.`) || path.startsWith(`${ancestor}[`);
}

function childIssues(schema: TSchema, value: unknown, path: string, failed: ReadonlySet<string>): ValidationIssue[] {
  if (value === null || typeof value !== 'object') return [];
  if (Array.isArray(value)) {
    const items = schema.items as TSchema | undefined;
    return items ? value.flatMap((item, i) => ruleIssues(items, item, `${path}[${i}]`, failed)) : [];
  }
  const properties = (schema.properties ?? {}) as Record<string, TSchema>;
  return Object.entries(properties).flatMap(([key, child]) =>
    ruleIssues(child, (value as Record<string, unknown>)[key], path ? `${path}.${key}` : key, failed),
  );
}
