// Runs hack/k8s-tools.sh, which builds what is missing (a no-op once cached) and prints the bin dir.
import { fileURLToPath } from 'node:url';
import { runBuildScript } from './commands.ts';

const SCRIPT = fileURLToPath(new URL('../../hack/k8s-tools.sh', import.meta.url));

export function ensureK8sTools(): Promise<string> {
  return runBuildScript(SCRIPT);
}
