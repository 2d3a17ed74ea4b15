// vitest globalSetup of the k8s project: one tier-2 control plane for the whole run (starting one takes
// seconds of both cores), handed to the test files through inject('kubeconfig') and inject('k8sBinDir').
import type { TestProject } from 'vitest/node';
import { ControlPlane } from './control-plane.ts';
import { ensureK8sTools } from './k8s-tools.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin kubeconfig of the shared tier-2 control plane. */
    kubeconfig: string;
    /** Folder with kubectl, helm, kube-apiserver, etcd, … for tests that start their own. */
    k8sBinDir: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const binDir = await ensureK8sTools();
  const started = Date.now();
  const cp = await ControlPlane.start({ binDir, tier: 2 });
  console.log(`k8s: control plane (tier 2) ready at ${cp.server} in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  project.provide('kubeconfig', cp.kubeconfigPath);
  project.provide('k8sBinDir', binDir);
  return () => cp.stop();
}
