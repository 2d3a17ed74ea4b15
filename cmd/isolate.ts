// `breakwater isolate NAME [-n NS]` (also `kubectl breakwater isolate`): holds the integration's circuit
// open in every pod by setting circuitBreaker.forceOpen, and `--off` removes the field again. One JSON
// merge patch of the resource with the user's own kubeconfig; each sidecar picks the change up with its
// next config reload. Exit codes: 0 done, 64 bad usage, 66 no such integration, 69 the API server could
// not be reached or refused the request.
import { GROUP, PLURAL, VERSION } from '../src/api/names.ts';
import { isNotFound, KubeError } from '../src/kube/errors.ts';
import { parseFlags, UsageError, usage, type FlagSpec } from '../src/runtime/flags.ts';
import { EXIT_UNAVAILABLE, kubectlFlags, namespaceFor, personClient } from './kubectl-plugin.ts';

/** EX_NOINPUT from sysexits.h. */
const EXIT_NOT_FOUND = 66;

const FLAGS = {
  namespace: { type: 'string', default: '', description: "the integration's namespace (-n); default: the kubeconfig context's, else default" },
  off: { type: 'boolean', default: false, description: 'release the circuit: remove circuitBreaker.forceOpen' },
  kubeconfig: { type: 'string', default: '', description: 'kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster)' },
} satisfies Record<string, FlagSpec>;

export async function isolate(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseFlags(FLAGS, kubectlFlags(argv, { '-n': '--namespace' }));
  if (positionals.length !== 1) {
    const problem = positionals.length === 0 ? 'name the ExternalIntegration to isolate' : `unexpected argument ${JSON.stringify(positionals[1])}`;
    throw new UsageError(`${problem}\n\n${usage('isolate NAME', FLAGS)}`);
  }
  const name = positionals[0]!;
  const client = personClient(values.kubeconfig, 'isolate');
  const namespace = namespaceFor(values.namespace, client);
  const path = `/apis/${GROUP}/${VERSION}/namespaces/${encodeURIComponent(namespace)}/${PLURAL}/${encodeURIComponent(name)}`;
  // null removes the field, so --off leaves the spec as it was before isolation (forceOpen defaults to false).
  const body = { spec: { circuitBreaker: { forceOpen: values.off ? null : true } } };
  try {
    await client.requestJson('PATCH', path, { body, contentType: 'application/merge-patch+json' });
  } catch (error) {
    if (!(error instanceof KubeError)) throw error;
    if (isNotFound(error)) {
      console.error(`breakwater isolate: no ExternalIntegration ${name} in namespace ${namespace}`);
      return EXIT_NOT_FOUND;
    }
    console.error(`breakwater isolate: ${error.message}`);
    return EXIT_UNAVAILABLE;
  } finally {
    await client.close();
  }
  console.log(
    values.off
      ? `${namespace}/${name}: released; each pod's breaker closes with its next config reload`
      : `${namespace}/${name}: isolated; each pod's breaker is held open with its next config reload, until breakwater isolate ${name} --off`,
  );
  return 0;
}
