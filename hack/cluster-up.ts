// `make cluster-up`: the tests' tier-2 control plane for a human, until Ctrl-C. Everything it creates
// lives in a temporary folder; the process helpers kill the control plane and remove that folder when
// this process gets SIGINT/SIGTERM or exits.
import { join } from 'node:path';
import { ControlPlane } from '../test/support/control-plane.ts';
import { ensureK8sTools } from '../test/support/k8s-tools.ts';

const binDir = await ensureK8sTools();
const cp = await ControlPlane.start({ binDir, tier: 2 });

console.log(`
Kubernetes control plane (kube-apiserver, etcd, controller-manager, scheduler, kwok) at ${cp.server}
Node kwok-node-0 is fake: Pods scheduled there are marked Running, but nothing runs them.
Logs: ${join(cp.dir, 'logs')}

  export KUBECONFIG=${cp.kubeconfigPath}
  export PATH=${binDir}:$PATH   # kubectl and helm built for this version

Ctrl-C stops it.`);

// Keep the event loop alive until a signal arrives.
setInterval(() => {}, 1 << 30);
