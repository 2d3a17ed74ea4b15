// The integrations table: validate a config's text (the API's validator) and compile it. A reload
// builds a complete new table before anything changes; an invalid file or a failed compile leaves the
// old table in service.
// The table is one reference read once per request, so a call in flight keeps the integration it began
// with. Integrations whose key (a hash of the spec) did not change are carried over, with their breaker
// state, limiter tokens and pool.
import { formatProblem, parseIntegrations } from '../api/documents.ts';
import { ANNOTATION_INTEGRATIONS } from '../api/names.ts';
import { Integration, integrationKey, type IntegrationContext } from './integration.ts';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'invalid_config';
  /** One line per problem, `file:doc name: path: message`. */
  readonly problems: readonly string[];

  constructor(file: string, problems: readonly string[]) {
    super(`${file}: invalid configuration, nothing loaded:\n  ${problems.join('\n  ')}`);
    this.problems = problems;
  }
}

export class IntegrationTable {
  private current: ReadonlyMap<string, Integration> = new Map();
  private readonly context: IntegrationContext;

  constructor(context: IntegrationContext) {
    this.context = context;
  }

  get(name: string): Integration | undefined {
    return this.current.get(name);
  }

  names(): string[] {
    return [...this.current.keys()];
  }

  /** Each integration in service with its circuit_state gauge value. */
  *circuitStates(): Iterable<readonly [string, number]> {
    for (const integration of this.current.values()) yield [integration.name, integration.circuitGauge];
  }

  /** Why `name` is not served, in words that say what to do about it (the 404's message). */
  whyUnknown(name: string): string {
    const only = this.context.only;
    if (only && !only.has(name)) {
      return `integration ${JSON.stringify(name)} is not selected for this pod; it serves ${[...only].join(', ') || 'none'} (pod annotation ${ANNOTATION_INTEGRATIONS})`;
    }
    if (this.current.size === 0) {
      return `no integration named ${JSON.stringify(name)}: none is configured yet (no valid ExternalIntegration in this namespace, or the config has not reached the pod yet)`;
    }
    return `no integration named ${JSON.stringify(name)}; known: ${this.names().join(', ')}`;
  }

  /** Puts the integrations of `text` (the content of `file`) in service, or throws ConfigError and changes nothing. */
  load(file: string, text: string): void {
    const parsed = parseIntegrations(text);
    if (parsed.problems.length > 0) throw new ConfigError(file, parsed.problems.map((p) => formatProblem(file, p)));
    // The namespace's file holds every integration; a pod that names some serves only those. A named
    // one that is not in the file yet (created after the pod) is served once it is.
    const only = this.context.only;
    const integrations = only ? parsed.integrations.filter((doc) => only.has(doc.metadata.name)) : parsed.integrations;
    const absent = only ? [...only].filter((name) => !integrations.some((doc) => doc.metadata.name === name)) : [];
    if (absent.length > 0) this.context.logger.warn({ file, absent }, 'selected integrations are not in the config file yet');

    const next = new Map<string, Integration>();
    const built: Integration[] = [];
    try {
      for (const doc of integrations) {
        const key = integrationKey(doc);
        const kept = this.current.get(doc.metadata.name);
        if (kept?.key === key) {
          next.set(kept.name, kept);
        } else {
          const integration = new Integration(doc, key, this.context);
          built.push(integration);
          next.set(integration.name, integration);
        }
      }
    } catch (error) {
      for (const integration of built) integration.retire(!this.current.has(integration.name));
      throw new ConfigError(file, [(error as Error).message]);
    }
    const previous = this.current;
    this.current = next;
    for (const [name, old] of previous) if (next.get(name) !== old) old.retire(!next.has(name));
  }

  /** Retires every integration (shutdown). */
  close(): void {
    for (const integration of this.current.values()) integration.retire(true);
    this.current = new Map();
  }
}
