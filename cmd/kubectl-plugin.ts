// What the commands run as kubectl plugins (`kubectl breakwater status|isolate`) share: kubectl's short
// flags, the person's own kubeconfig found in kubectl's order, and the sysexits codes they exit with.
import { KubeClient } from '../src/kube/client.ts';
import { KubeError } from '../src/kube/errors.ts';
import { UsageError } from '../src/runtime/flags.ts';
import { VERSION as RELEASE } from '../src/runtime/version.ts';

/** EX_UNAVAILABLE from sysexits.h: the API server could not be reached or refused the request. */
export const EXIT_UNAVAILABLE = 69;

/** `-n ns`, `-nns` and `-n=ns` as the long flags `short` names (`{'-n': '--namespace'}`). */
export function kubectlFlags(argv: readonly string[], short: Readonly<Record<string, string>>): string[] {
  return argv.map((arg) => {
    if (short[arg]) return short[arg];
    const attached = /^(-[a-zA-Z])=?(.+)$/.exec(arg);
    const long = attached && short[attached[1]!];
    return long ? `${long}=${attached[2]}` : arg;
  });
}

/** The namespace a command acts in, as kubectl picks it: -n, else the kubeconfig context's, else `default`. */
export function namespaceFor(flag: string, client: KubeClient): string {
  return flag || client.namespace || 'default';
}

/** A client on the person's kubeconfig; no kubeconfig to be found is a usage error, said as such. */
export function personClient(kubeconfig: string, command: string): KubeClient {
  try {
    return new KubeClient({ kubeconfig: kubeconfig || undefined, userAgent: `breakwater-${command}/${RELEASE}`, caller: 'person' });
  } catch (error) {
    if (error instanceof KubeError && error.code === 'no_config') throw new UsageError(error.message);
    throw error;
  }
}
