// Scale of the reconciler: 500 ExternalIntegrations in 50 namespaces applied at once against a private
// control plane (etcd + kube-apiserver), one operator process reconciling them. Prints the time until
// every one is Ready=True at its generation, the requests the operator made to the API server, and its
// memory. Aim: all Ready within 10 s, RSS under 150 MB.
//
//   node bench/operator-reconcile.ts [--namespaces 50] [--per-namespace 10]
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { API_VERSION, CONDITION_READY, GROUP, KIND, PLURAL, VERSION } from '../src/api/names.ts';
import type { ExternalIntegrationStatus } from '../src/api/schema.ts';
import { KubeClient } from '../src/kube/client.ts';
import { ControlPlane } from '../test/support/control-plane.ts';
import { ensureK8sTools } from '../test/support/k8s-tools.ts';
import { installCrd } from '../test/support/injection.ts';
import { eventually, kubectlFor, ok } from '../test/support/kube.ts';
import { startOperator } from '../test/support/operator-process.ts';
import { compiled } from './support/build.ts';
import { peakRssBytes, rssBytes } from './support/proc.ts';

const { values } = parseArgs({
  options: { namespaces: { type: 'string', default: '50' }, 'per-namespace': { type: 'string', default: '10' } },
});
const NAMESPACES = Number(values.namespaces);
const PER_NAMESPACE = Number(values['per-namespace']);
const TOTAL = NAMESPACES * PER_NAMESPACE;
const DEADLINE_MS = 120_000;
const POLL_MS = 100;

interface Listed {
  items: { metadata: { generation?: number }; status?: ExternalIntegrationStatus }[];
}

const binDir = await ensureK8sTools();
// The operator runs as the image runs it: compiled JavaScript, no TypeScript parser in memory.
const buildDir = mkdtempSync(join(tmpdir(), 'breakwater-bench-operator-'));
const cli = compiled(buildDir)('cmd/breakwater.ts');
const cp = await ControlPlane.start({ binDir, tier: 1 });
const client = new KubeClient({ kubeconfig: cp.kubeconfigPath, userAgent: 'breakwater-bench' });
try {
  const kubectl = kubectlFor(binDir, cp.kubeconfigPath);
  await installCrd(kubectl);
  await ok(kubectl, ['create', 'namespace', 'breakwater-system']);
  const names = Array.from({ length: NAMESPACES }, (_, i) => `bench-${String(i).padStart(2, '0')}`);
  await Promise.all(names.map((name) => client.requestJson('POST', '/api/v1/namespaces', { body: { metadata: { name } } })));
  // Half the integrations name a credential Secret, so the existence check is on the path.
  await Promise.all(
    names.map((namespace) =>
      client.requestJson('POST', `/api/v1/namespaces/${namespace}/secrets`, { body: { metadata: { name: 'vendor-key' }, stringData: { token: 'x' } } }),
    ),
  );

  const operator = await startOperator({
    kubeconfig: cp.kubeconfigPath,
    namespace: 'breakwater-system',
    name: 'operator-bench',
    cli,
    args: ['--log-level=info'],
  });
  await eventually('the operator leading', async () => {
    const leader = await operator.metric('breakwater_operator_leader');
    return { done: leader === 1 || undefined, seen: { leader } };
  });
  const requestsBefore = await operator.metric('breakwater_operator_api_requests_total');
  const idleRss = rssBytes(operator.pid);

  const started = performance.now();
  await Promise.all(
    names.flatMap((namespace) =>
      Array.from({ length: PER_NAMESPACE }, (_, j) =>
        client.requestJson('POST', `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}`, {
          body: {
            apiVersion: API_VERSION,
            kind: KIND,
            metadata: { name: `vendor-${j}` },
            spec: {
              upstream: { url: `https://vendor-${j}.example` },
              retry: { maxAttempts: 1 + (j % 5) },
              ...(j % 2 === 0 && { auth: { secretRef: { name: 'vendor-key', key: 'token' } } }),
            },
          },
        }),
      ),
    ),
  );
  const appliedMs = performance.now() - started;

  await eventually(
    `all ${TOTAL} Ready`,
    async () => {
      const list = await client.getJson<Listed>(`/apis/${GROUP}/${VERSION}/${PLURAL}`);
      const ready = list.items.filter(
        (i) =>
          i.status?.observedGeneration === i.metadata.generation &&
          i.status?.conditions?.some((c) => c.type === CONDITION_READY && c.status === 'True'),
      ).length;
      return { done: ready === TOTAL || undefined, seen: { ready } };
    },
    DEADLINE_MS,
    POLL_MS,
  );
  const readyMs = performance.now() - started;
  await new Promise((r) => setTimeout(r, 1_000)); // let the metrics settle on the last writes
  const verbs = ['LIST', 'WATCH', 'GET', 'POST', 'PUT', 'PATCH'];
  const byVerb = await Promise.all(verbs.map(async (verb) => [verb, await operator.metric('breakwater_operator_api_requests_total', { verb })] as const));
  const requestsAfter = await operator.metric('breakwater_operator_api_requests_total');
  const reconciles = await operator.metric('breakwater_operator_reconcile_total');
  const errors = await operator.metric('breakwater_operator_reconcile_errors_total');
  const rss = await operator.metric('breakwater_process_resident_memory_bytes');
  const heapUsed = await operator.metric('breakwater_nodejs_heap_size_used_bytes');
  const cpuSeconds = await operator.metric('breakwater_process_cpu_seconds_total');
  const reconcileSeconds = await operator.metric('breakwater_operator_reconcile_duration_seconds_sum');
  const peakRss = peakRssBytes(operator.pid);
  await operator.stop();

  const mb = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MB`;
  console.log(`operator reconcile benchmark: ${TOTAL} ExternalIntegrations in ${NAMESPACES} namespaces (Node ${process.version})`);
  console.log(`  applied (all creates answered)   ${(appliedMs / 1000).toFixed(2)} s`);
  console.log(`  all Ready=True at generation     ${(readyMs / 1000).toFixed(2)} s   (aim < 10 s)`);
  console.log(`  API requests during the burst    ${requestsAfter - requestsBefore}   (${byVerb.map(([v, n]) => `${v} ${n}`).join(', ')} since start)`);
  console.log(`  reconciles                       ${reconciles} (${errors} failed), ${reconcileSeconds.toFixed(1)} s in reconciles over all workers`);
  console.log(`  operator CPU since its start     ${cpuSeconds.toFixed(1)} s   (load average now ${loadavg()[0]?.toFixed(1)} on ${cpus().length} cores)`);
  console.log(`  operator RSS at the end          ${mb(rss)}; peak ${mb(peakRss)}; idle before ${mb(idleRss)}   (aim < 150 MB)`);
  console.log(`  operator JS heap used at the end ${mb(heapUsed)}`);
} finally {
  await client.close();
  await cp.stop();
  rmSync(buildDir, { recursive: true, force: true });
}
