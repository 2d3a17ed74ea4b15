// The ExternalIntegration field reference and the sidecar's error table, written from the schema and
// the error table so the documentation cannot drift from what the validator and the CRD enforce.
import type { TSchema } from '@sinclair/typebox';
import { SIDECAR_ERRORS } from './errors.ts';
import { MESSAGE_KEY, RULES_KEY, type Rule } from './rules.ts';
import { DURATION_MESSAGE, ExternalIntegrationSpec, positiveDuration } from './schema.ts';

interface Row {
  readonly path: string;
  readonly type: string;
  readonly description: string;
}

function typeOf(schema: TSchema): string {
  if (Array.isArray(schema.anyOf)) return (schema.anyOf as TSchema[]).map((b) => `\`${String(b.const)}\``).join(' \\| ');
  if (schema[MESSAGE_KEY] === DURATION_MESSAGE) return 'duration';
  if (schema.type === 'array') return `list of ${typeOf(schema.items as TSchema)}`;
  if (schema.patternProperties) return 'map of string';
  return String(schema.type);
}

function rows(schema: TSchema, path: string, required: boolean): Row[] {
  const rules = ((schema[RULES_KEY] ?? []) as Rule[])
    .filter((r) => r.cel !== positiveDuration.cel)
    .map((r) => `${r.fieldPath ? `\`${r.fieldPath.slice(1)}\` ` : ''}${r.message}`);
  const bounds = [
    schema.minimum !== undefined ? `min ${String(schema.minimum)}` : '',
    schema.maximum !== undefined ? `max ${String(schema.maximum)}` : '',
    typeof schema.exclusiveMinimum === 'number' ? `> ${schema.exclusiveMinimum}` : '',
    typeof schema.exclusiveMaximum === 'number' ? `< ${schema.exclusiveMaximum}` : '',
  ].filter(Boolean);
  const own: Row = {
    path,
    type: `${typeOf(schema)}${required ? ' (required)' : ''}`,
    description: [schema.description ?? '', bounds.length ? `(${bounds.join(', ')})` : '', rules.length ? `Rules: ${rules.join('; ')}.` : '']
      .filter(Boolean)
      .join(' '),
  };
  const children = Object.entries((schema.properties ?? {}) as Record<string, TSchema>).flatMap(([key, child]) =>
    rows(child, `${path}.${key}`, ((schema.required ?? []) as string[]).includes(key)),
  );
  return [own, ...children];
}

/** The field table: every field of `spec` with its type, default and rules. */
export function fieldsMarkdown(): string {
  const fields = rows(ExternalIntegrationSpec, 'spec', true).slice(1);
  return [
    '| Field | Type | Meaning and default |',
    '| --- | --- | --- |',
    ...fields.map((r) => `| \`${r.path}\` | ${r.type} | ${r.description.replaceAll('|', '\\|')} |`),
  ].join('\n');
}

/** The error table: every code the sidecar answers with, its status and when. */
export function errorsMarkdown(): string {
  return [
    'Body: `{"error": "<code>", "integration": "<name>", "message": "…"}`, with `Retry-After` where the sidecar knows one.',
    '',
    '| Code | Status | When |',
    '| --- | --- | --- |',
    ...Object.entries(SIDECAR_ERRORS).map(([code, e]) => `| \`${code}\` | ${e.status} | ${e.meaning} |`),
  ].join('\n');
}
