// Reads a YAML stream of ExternalIntegration documents, as `kubectl apply -f` would take it. Shared by
// `breakwater validate`, the sidecar's config loader and the operator's rendering, so a file that one of
// them accepts, all of them accept.
import { parseAllDocuments, stringify } from 'yaml';
import type { ExternalIntegration } from './schema.ts';
import { validateIntegration } from './validate.ts';

export interface DocumentProblem {
  /** 1-based position of the document in the stream. */
  readonly doc: number;
  readonly name?: string;
  /** Field path, or undefined for a problem with the document as a whole. */
  readonly path?: string;
  readonly message: string;
  readonly line?: number;
  readonly column?: number;
}

export interface ParsedIntegrations {
  readonly integrations: readonly ExternalIntegration[];
  readonly problems: readonly DocumentProblem[];
}

export function parseIntegrations(text: string): ParsedIntegrations {
  const integrations: ExternalIntegration[] = [];
  const problems: DocumentProblem[] = [];
  const names = new Map<string, number>();
  parseAllDocuments(text, { prettyErrors: true }).forEach((document, i) => {
    const doc = i + 1;
    const syntax = [...document.errors];
    if (syntax.length > 0) {
      for (const error of syntax) {
        const [line, column] = [error.linePos?.[0].line, error.linePos?.[0].col];
        // prettyErrors appends the position and a source excerpt; the position is reported separately.
        const message = (error.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
        problems.push({ doc, message, line, column });
      }
      return;
    }
    const value: unknown = document.toJS();
    if (value === null || value === undefined) return;
    const name = nameOf(value);
    const result = validateIntegration(value);
    if (!result.ok) {
      for (const issue of result.issues) problems.push({ doc, name, path: issue.path, message: issue.message });
      return;
    }
    const key = `${result.value.metadata.namespace ?? ''}/${result.value.metadata.name}`;
    const first = names.get(key);
    if (first !== undefined) {
      problems.push({ doc, name, path: 'metadata.name', message: `duplicates document ${first}` });
      return;
    }
    names.set(key, doc);
    integrations.push(result.value);
  });
  return { integrations, problems };
}

/** `file:2 stripe: spec.retry.maxAttempts: must be at most 10`, or `file:7:3: …` for YAML syntax. */
export function formatProblem(file: string, problem: DocumentProblem): string {
  if (problem.line !== undefined) return `${file}:${problem.line}:${problem.column ?? 1}: ${problem.message}`;
  const where = `${file}:${problem.doc}${problem.name ? ` ${problem.name}` : ''}`;
  return problem.path ? `${where}: ${problem.path}: ${problem.message}` : `${where}: ${problem.message}`;
}

/** The stream the sidecar reads, one document per integration. */
export function renderIntegrations(integrations: readonly ExternalIntegration[]): string {
  return integrations.map((i) => stringify(i, { lineWidth: 0 })).join('---\n');
}

function nameOf(value: unknown): string | undefined {
  const name = (value as { metadata?: { name?: unknown } }).metadata?.name;
  return typeof name === 'string' ? name : undefined;
}
