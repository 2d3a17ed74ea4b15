// `breakwater status` (also `kubectl breakwater status`, installed as kubectl-breakwater): every
// ExternalIntegration with whether it is served, its breaker across the pods that report for it (marked
// where the integration is in mode observe: that breaker only counts), their error rate over the last
// minute, and the pods injected with it. Read from the resources and the pods, with the user's own
// kubeconfig. Exit codes: 0 all healthy, 1 something is not (an
// integration not Ready, or a breaker open in any pod), 64 bad usage, 69 the API server could not be
// reached or refused the request.
import {
  ANNOTATION_INTEGRATIONS,
  ANNOTATION_STATUS,
  CONDITION_READY,
  CONDITION_VENDOR_HEALTHY,
  GROUP,
  PLURAL,
  VERSION,
} from '../src/api/names.ts';
import { DEFAULTS } from '../src/api/defaults.ts';
import type { Condition, ExternalIntegrationSpec, ExternalIntegrationStatus } from '../src/api/schema.ts';
import { KubeError } from '../src/kube/errors.ts';
import { parseFlags, UsageError, usage, type FlagSpec } from '../src/runtime/flags.ts';
import { EXIT_UNAVAILABLE, kubectlFlags, namespaceFor, personClient } from './kubectl-plugin.ts';

const EXIT_UNHEALTHY = 1;
const OUTPUTS = ['table', 'json'] as const;

const FLAGS = {
  namespace: { type: 'string', default: '', description: "this namespace (-n); default: the kubeconfig context's, else default" },
  'all-namespaces': { type: 'boolean', default: false, description: 'every namespace (-A)' },
  output: { type: 'string', default: 'table', choices: OUTPUTS, description: 'table or json (-o)' },
  kubeconfig: { type: 'string', default: '', description: 'kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster)' },
} satisfies Record<string, FlagSpec>;

/** kubectl's short flags, spelt as ours. */
const SHORT: Record<string, string> = { '-n': '--namespace', '-o': '--output', '-A': '--all-namespaces' };

interface Stored {
  metadata: { name: string; namespace: string };
  spec?: Pick<ExternalIntegrationSpec, 'mode'>;
  status?: ExternalIntegrationStatus;
}

interface StoredPod {
  metadata: { namespace: string; annotations?: Record<string, string>; deletionTimestamp?: string };
  status?: { phase?: string };
}

/** One row of the table, and one object of `-o json`. */
export interface IntegrationHealth {
  readonly namespace: string;
  readonly name: string;
  readonly mode: NonNullable<ExternalIntegrationSpec['mode']>;
  readonly ready: Condition['status'];
  readonly readyReason: string;
  readonly vendor: Condition['status'];
  readonly vendorReason: string;
  readonly message: string;
  readonly circuit: { readonly open: number; readonly halfOpen: number; readonly closed: number; readonly since?: string };
  readonly lastError?: { readonly time: string; readonly pod: string; readonly error: string };
  readonly pods: { readonly reporting: number; readonly injected: number; readonly needRestart: number };
  readonly lastMinute: { readonly calls: number; readonly failures: number; readonly errorRate: number | null };
  readonly backlog: number;
  readonly healthy: boolean;
}

function condition(status: ExternalIntegrationStatus | undefined, type: string): Condition | undefined {
  return status?.conditions?.find((c) => c.type === type);
}

/** Pods that carry the sidecar for this integration: those injected in its namespace that name it, or name none (all). */
function injectedWith(pods: readonly StoredPod[], namespace: string, name: string): number {
  return pods.filter((pod) => {
    const annotations = pod.metadata.annotations ?? {};
    if (pod.metadata.namespace !== namespace || annotations[ANNOTATION_STATUS] === undefined || pod.metadata.deletionTimestamp) return false;
    if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return false;
    const requested = (annotations[ANNOTATION_INTEGRATIONS] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    return requested.length === 0 || requested.includes(name);
  }).length;
}

export function health(stored: Stored, pods: readonly StoredPod[]): IntegrationHealth {
  const s = stored.status;
  const ready = condition(s, CONDITION_READY);
  const vendor = condition(s, CONDITION_VENDOR_HEALTHY);
  const calls = s?.lastMinute?.calls ?? 0;
  const failures = s?.lastMinute?.failures ?? 0;
  const circuit = { open: s?.circuit?.open ?? 0, halfOpen: s?.circuit?.halfOpen ?? 0, closed: s?.circuit?.closed ?? 0, ...(s?.circuit?.since && { since: s.circuit.since }) };
  return {
    namespace: stored.metadata.namespace,
    name: stored.metadata.name,
    mode: stored.spec?.mode ?? DEFAULTS.mode,
    ready: ready?.status ?? 'Unknown',
    readyReason: ready?.reason ?? '',
    vendor: vendor?.status ?? 'Unknown',
    vendorReason: vendor?.reason ?? '',
    message: [ready?.status === 'True' ? '' : ready?.message, vendor?.status === 'False' ? vendor.message : ''].filter(Boolean).join('; '),
    circuit,
    ...(s?.circuit?.lastError && { lastError: s.circuit.lastError }),
    pods: { reporting: s?.pods?.reporting ?? 0, injected: injectedWith(pods, stored.metadata.namespace, stored.metadata.name), needRestart: s?.pods?.needRestart ?? 0 },
    lastMinute: { calls, failures, errorRate: calls > 0 ? failures / calls : null },
    backlog: s?.backlog ?? 0,
    healthy: ready?.status === 'True' && vendor?.status !== 'False',
  };
}

function breaker(h: IntegrationHealth): string {
  const state = circuit(h);
  return h.mode === 'observe' ? `${state} (observe)` : state;
}

function circuit(h: IntegrationHealth): string {
  const { open, halfOpen, closed } = h.circuit;
  const total = open + halfOpen + closed;
  if (total === 0) return '-';
  if (open + halfOpen === 0) return 'closed';
  return [open > 0 && `${open}/${total} open`, halfOpen > 0 && `${halfOpen}/${total} half-open`].filter(Boolean).join(', ');
}

function errorRate(h: IntegrationHealth): string {
  const { calls, failures, errorRate: rate } = h.lastMinute;
  return rate === null ? '-' : `${(rate * 100).toFixed(rate > 0 && rate < 0.1 ? 1 : 0)}% (${failures}/${calls})`;
}

/** Columns padded like kubectl's: three spaces between them, no borders. */
export function table(rows: readonly IntegrationHealth[], allNamespaces: boolean): string {
  const header = [...(allNamespaces ? ['NAMESPACE'] : []), 'NAME', 'READY', 'VENDOR', 'BREAKER', 'ERRORS (1m)', 'PODS', 'RESTART', 'BACKLOG'];
  const lines = rows.map((h) => [
    ...(allNamespaces ? [h.namespace] : []),
    h.name,
    h.ready === 'True' ? 'True' : `${h.ready} (${h.readyReason})`,
    h.vendor === 'True' || h.vendor === 'False' ? h.vendor : '-',
    breaker(h),
    errorRate(h),
    `${h.pods.reporting}/${h.pods.injected}`,
    String(h.pods.needRestart),
    String(h.backlog),
  ]);
  const widths = header.map((title, i) => Math.max(title.length, ...lines.map((l) => l[i]!.length)));
  return [header, ...lines].map((cells) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('   ')).join('\n');
}

export async function status(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseFlags(FLAGS, kubectlFlags(argv, SHORT));
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}\n\n${usage('status', FLAGS)}`);
  if (values['all-namespaces'] && values.namespace) throw new UsageError('give -n NAMESPACE or -A, not both');
  const client = personClient(values.kubeconfig, 'status');
  const all = values['all-namespaces'];
  const namespace = all ? undefined : namespaceFor(values.namespace, client);
  const scope = namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  let rows: IntegrationHealth[];
  try {
    const [integrations, pods] = await Promise.all([
      client.getJson<{ items: Stored[] }>(`/apis/${GROUP}/${VERSION}${scope}/${PLURAL}`),
      client.getJson<{ items: StoredPod[] }>(`/api/v1${scope}/pods`),
    ]);
    rows = integrations.items
      .map((i) => health(i, pods.items))
      .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
  } catch (error) {
    if (!(error instanceof KubeError)) throw error;
    console.error(`breakwater status: ${error.message}`);
    return EXIT_UNAVAILABLE;
  } finally {
    await client.close();
  }
  const healthy = rows.every((r) => r.healthy);
  if (values.output === 'json') console.log(JSON.stringify({ healthy, integrations: rows }, null, 2));
  else if (rows.length === 0) console.log(all ? 'No ExternalIntegrations found.' : `No ExternalIntegrations found in ${namespace} namespace.`);
  else {
    console.log(table(rows, all));
    for (const r of rows.filter((row) => !row.healthy && row.message)) console.log(`\n${r.namespace}/${r.name}: ${r.message}`);
  }
  return healthy ? 0 : EXIT_UNHEALTHY;
}
