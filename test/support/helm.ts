// The helm we built (hack/k8s-tools.sh), run against the chart in charts/breakwater, and the value
// combinations every chart check covers: the defaults plus each charts/breakwater/ci/*-values.yaml
// (the chart-testing convention, also what `make chart-lint` walks).
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { commandAt, type RunResult } from './commands.ts';

export const CHART_DIR = fileURLToPath(new URL('../../charts/breakwater', import.meta.url));

export interface ValueCombination {
  /** `default`, or the values file's name without `-values.yaml`. */
  readonly name: string;
  /** `--values` arguments; none for the defaults. */
  readonly args: readonly string[];
}

export const VALUE_COMBINATIONS: readonly ValueCombination[] = [
  { name: 'default', args: [] },
  ...readdirSync(join(CHART_DIR, 'ci'))
    .filter((f) => f.endsWith('-values.yaml'))
    .sort()
    .map((f) => ({ name: f.replace(/-values\.yaml$/, ''), args: ['--values', join(CHART_DIR, 'ci', f)] })),
];

// Keeps helm's cache, config and repositories away from the user's own.
const HELM_HOME = join(tmpdir(), 'breakwater-helm');
const HELM_ENV = {
  ...process.env,
  HELM_CACHE_HOME: join(HELM_HOME, 'cache'),
  HELM_CONFIG_HOME: join(HELM_HOME, 'config'),
  HELM_DATA_HOME: join(HELM_HOME, 'data'),
};

export type Helm = (args: readonly string[]) => Promise<RunResult>;

/** helm from binDir; with a kubeconfig for the commands that talk to a cluster. */
export function helmFor(binDir: string, kubeconfig?: string): Helm {
  return commandAt(join(binDir, 'helm'), kubeconfig === undefined ? [] : ['--kubeconfig', kubeconfig], { timeoutMs: 180_000, env: HELM_ENV });
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export function parseManifests(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`rendered YAML does not parse: ${d.errors[0]?.message}`);
      return d.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
}

/** The one object of `kind` (named `name` when given); fails when there is not exactly one. */
export function only<T = K8sObject>(objects: readonly K8sObject[], kind: string, name?: string): T {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) {
    throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}: ${found.map((o) => o.metadata.name).join(', ')}`);
  }
  return found[0] as T;
}
