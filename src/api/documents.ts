// Reads a YAML stream of ExternalIntegration documents, as `kubectl apply -f` would take it. Shared by
// `breakwater validate`, the sidecar's config loader and the operator's rendering, so a file that one of
// them accepts, all of them accept.
import { isNode, LineCounter, parseAllDocuments, stringify, type Document } from 'yaml';
import type { ExternalIntegration } from './schema.ts';
import { validateIntegration } from './validate.ts';

export interface DocumentProblem {
  readonly name?: string;
  /** Field path, or undefined for a problem with the document as a whole. */
  readonly path?: string;
  readonly message: string;
  /**
   * 1-based, in the file: where the YAML breaks, or the field the path names (its closest ancestor
   * when the field is missing, the document's start when nothing of the path is there).
   */
  readonly line: number;
  readonly column: number;
}

export interface ParsedIntegrations {
  readonly integrations: readonly ExternalIntegration[];
  readonly problems: readonly DocumentProblem[];
}

export function parseIntegrations(text: string): ParsedIntegrations {
  const integrations: ExternalIntegration[] = [];
  const problems: DocumentProblem[] = [];
  const names = new Map<string, number>();
  const lines = new LineCounter();
  for (const document of parseAllDocuments(text, { prettyErrors: true, lineCounter: lines })) {
    const syntax = [...document.errors];
    if (syntax.length > 0) {
      for (const error of syntax) {
        const at = error.linePos?.[0] ?? lines.linePos(error.pos[0]);
        // prettyErrors appends the position and a source excerpt; the position is reported separately.
        const message = (error.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
        problems.push({ message, line: at.line, column: at.col });
      }
      continue;
    }
    const value: unknown = document.toJS();
    if (value === null || value === undefined) continue;
    const name = nameOf(value);
    const where = (path: string | undefined) => {
      const at = lines.linePos(offsetOf(document, path));
      return { line: at.line, column: at.col };
    };
    const result = validateIntegration(value);
    if (!result.ok) {
      for (const issue of result.issues) problems.push({ name, path: issue.path, message: issue.message, ...where(issue.path) });
      continue;
    }
    const key = `${result.value.metadata.namespace ?? ''}/${result.value.metadata.name}`;
    const start = where(undefined).line;
    const first = names.get(key);
    if (first !== undefined) {
      problems.push({ name, path: 'metadata.name', message: `duplicates the document at line ${first}`, ...where('metadata.name') });
      continue;
    }
    names.set(key, start);
    integrations.push(result.value);
  }
  return { integrations, problems };
}

/** `file:12:5: stripe: spec.retry.maxAttempts: must be at most 10`, or `file:7:3: …` for YAML syntax. */
export function formatProblem(file: string, problem: DocumentProblem): string {
  const where = `${file}:${problem.line}:${problem.column}:${problem.name ? ` ${problem.name}:` : ''}`;
  return problem.path ? `${where} ${problem.path}: ${problem.message}` : `${where} ${problem.message}`;
}

/** The stream the sidecar reads, one document per integration. */
export function renderIntegrations(integrations: readonly ExternalIntegration[]): string {
  return integrations.map((i) => stringify(i, { lineWidth: 0 })).join('---\n');
}

/**
 * Where in the text the field at `path` (`spec.retry.retryOn[1]`) is, or its closest ancestor that is
 * there; the document's content when nothing of it is.
 */
function offsetOf(document: Document, path: string | undefined): number {
  const keys = path === undefined ? [] : path.split(/\.|\[(\d+)\]/).filter((k) => k !== undefined && k !== '');
  const segments = keys.map((k) => (/^\d+$/.test(k) ? Number(k) : k));
  for (let n = segments.length; n > 0; n--) {
    const node: unknown = document.getIn(segments.slice(0, n), true);
    if (isNode(node) && node.range) return node.range[0];
  }
  return document.contents?.range?.[0] ?? document.range?.[0] ?? 0;
}

function nameOf(value: unknown): string | undefined {
  const name = (value as { metadata?: { name?: unknown } }).metadata?.name;
  return typeof name === 'string' ? name : undefined;
}
