// vitest globalSetup of the pods project (tier 3): a control plane reachable from pods and one real
// node running containerd, runc and a kubelet, with Breakwater's image (`make image`) and the test
// images imported. Whatever happens, teardown takes every pod, container, mount, cgroup and the bridge
// away again (hack/pods/down.sh), and the next run clears what a killed run left.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { ControlPlane } from './control-plane.ts';
import { ensureK8sTools } from './k8s-tools.ts';
import { NODE_ADDRESS, prepareNodeNetwork, RealNode, removeNode } from './real-node.ts';

/** Where `make image` and hack/pods/test-images.sh write their OCI tarballs. */
export const IMAGES_DIR = fileURLToPath(new URL('../../.images/', import.meta.url));
export const BREAKWATER_IMAGE = 'breakwater.local/breakwater:dev';
export const APP_IMAGE = 'breakwater.local/busybox:1.36';
const TARBALLS = ['pause.tar', 'busybox.tar', 'breakwater.tar'];

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin kubeconfig of the control plane the real node belongs to. */
    podsKubeconfig: string;
    /** Where pods reach the API server (KUBERNETES_SERVICE_HOST/PORT for in-cluster clients). */
    podsApiServer: { host: string; port: string };
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const missing = TARBALLS.filter((t) => !existsSync(join(IMAGES_DIR, t)));
  if (missing.length > 0) throw new Error(`missing ${missing.join(', ')} in ${IMAGES_DIR}: run make test-pods (it builds them)`);
  const binDir = await ensureK8sTools();
  if (!existsSync(join(binDir, 'kubelet'))) throw new Error(`no kubelet in ${binDir}: hack/k8s-tools.sh builds it`);
  const started = Date.now();
  let cp: ControlPlane | undefined;
  let node: RealNode | undefined;
  try {
    await prepareNodeNetwork();
    cp = await ControlPlane.start({ binDir, tier: 3, address: NODE_ADDRESS });
    node = await RealNode.start(cp, TARBALLS.map((t) => join(IMAGES_DIR, t)));
  } catch (error) {
    await cp?.stop();
    await removeNode();
    throw error;
  }
  console.log(`pods: control plane and node Ready at ${cp.server} in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  project.provide('podsKubeconfig', cp.kubeconfigPath);
  project.provide('podsApiServer', { host: NODE_ADDRESS, port: new URL(cp.server).port });
  project.provide('k8sBinDir', binDir);
  const [controlPlane, realNode] = [cp, node];
  return async () => {
    await realNode.stop();
    await controlPlane.stop();
  };
}
