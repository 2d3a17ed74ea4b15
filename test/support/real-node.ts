// A real Kubernetes node on this machine for the tier-3 suites: containerd (with its CRI plugin) and
// runc from Debian's packages, the CNI bridge plugin, and a kubelet built like the control plane
// (hack/k8s-tools.sh), registered with a tier-3 ControlPlane. Pods are real processes in real
// containers, in memory cgroups with their limits.
//
// Network rule: pods live on a bridge this file creates, in network namespaces containerd creates. The
// node's address is the bridge's own, where the API server and the tests' vendors listen. No
// masquerade, no default route in pods, ip_forward untouched: traffic only goes between this machine
// and the pods, and a pod that dials anything else gets "network unreachable".
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { waitUntil, type ControlPlane } from './control-plane.ts';
import { freePort, isRunning, startProcess, stopProcess, type Managed } from './processes.ts';

const run = promisify(execFile);
const DOWN = fileURLToPath(new URL('../../hack/pods/down.sh', import.meta.url));

export const NODE_NAME = 'breakwater-node';
/** The bridge's address: the node's InternalIP, where the API server and host-side vendors listen. */
export const NODE_ADDRESS = '10.213.77.1';
const POD_SUBNET = '10.213.77.0/24';
const BRIDGE = 'bw-pods0';
const NETWORK = 'breakwater-pods';
/** Fixed, so that a run that died is cleaned up by the next one. */
export const NODE_STATE = join(tmpdir(), 'breakwater-pods');
export const CONTAINERD_SOCKET = join(NODE_STATE, 'containerd.sock');
/** The sandbox image containerd runs in every pod (hack/pods/test-images.sh builds it). */
const PAUSE_IMAGE = 'breakwater.local/pause:3.10';


/** Removes whatever an earlier node left, then creates the bridge the control plane will listen on. */
export async function prepareNodeNetwork(): Promise<void> {
  await removeNode();
  await run('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
  await run('ip', ['addr', 'add', `${NODE_ADDRESS}/24`, 'dev', BRIDGE]);
  await run('ip', ['link', 'set', BRIDGE, 'up']);
}

/** Everything under NODE_STATE and the bridge (hack/pods/down.sh), also after a crashed run. */
export async function removeNode(): Promise<void> {
  await run('bash', [DOWN, NODE_STATE, BRIDGE], { timeout: 120_000 });
}

export class RealNode {
  private readonly procs: Managed[] = [];
  private readonly cp: ControlPlane;

  private constructor(cp: ControlPlane) {
    this.cp = cp;
  }

  /** Starts containerd, imports `images` (OCI tarballs), starts the kubelet and waits for Node Ready. */
  static async start(cp: ControlPlane, images: readonly string[]): Promise<RealNode> {
    const node = new RealNode(cp);
    try {
      await node.startContainerd();
      for (const image of images) await run('ctr', ['-a', CONTAINERD_SOCKET, '-n', 'k8s.io', 'images', 'import', image], { timeout: 300_000 });
      await node.startKubelet();
    } catch (error) {
      await node.stop();
      throw error;
    }
    return node;
  }

  /**
   * Lets the kubelet take its pods down properly (volumes, CNI) while it still runs, stops it, then
   * removes containers, containerd and everything else (hack/pods/down.sh).
   */
  async stop(): Promise<void> {
    const kubelet = this.procs.find((p) => p.name === 'kubelet');
    if (kubelet && isRunning(kubelet)) {
      await run(
        join(this.cp.binDir, 'kubectl'),
        [`--kubeconfig=${this.cp.kubeconfigPath}`, 'delete', 'deploy,rs,sts,ds,job,pod', '--all', '-A', '--grace-period=5', '--timeout=60s'],
        { timeout: 90_000 },
      ).catch(() => undefined);
      await stopProcess(kubelet, 15_000);
    }
    await removeNode();
  }

  private spawn(name: string, bin: string, args: string[]): Managed {
    mkdirSync(join(NODE_STATE, 'run'), { recursive: true });
    mkdirSync(join(NODE_STATE, 'logs'), { recursive: true });
    const p = startProcess(name, bin, args, join(NODE_STATE, 'logs', `${name}.log`));
    writeFileSync(join(NODE_STATE, 'run', `${name}.pid`), String(p.child.pid));
    this.procs.push(p);
    return p;
  }

  private async startContainerd(): Promise<void> {
    const dir = (name: string) => join(NODE_STATE, name);
    mkdirSync(dir('cni/net.d'), { recursive: true });
    writeFileSync(
      dir('cni/net.d/10-breakwater-pods.conflist'),
      JSON.stringify({
        cniVersion: '1.0.0',
        name: NETWORK,
        plugins: [
          {
            type: 'bridge',
            bridge: BRIDGE,
            // The bridge already has the node's address; no gateway, default route or masquerade.
            isGateway: false,
            isDefaultGateway: false,
            ipMasq: false,
            hairpinMode: true,
            ipam: { type: 'host-local', dataDir: dir('cni/ipam'), ranges: [[{ subnet: POD_SUBNET, gateway: NODE_ADDRESS }]] },
          },
        ],
      }),
    );
    writeFileSync(
      dir('containerd.toml'),
      `version = 2
root = "${dir('containerd/root')}"
state = "${dir('containerd/state')}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "${CONTAINERD_SOCKET}"
[plugins."io.containerd.internal.v1.opt"]
  path = "${dir('containerd/opt')}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # Root here may lack CAP_SYS_RESOURCE, and runc then fails to lower a sandbox's oom_score_adj.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${dir('cni/net.d')}"
    max_conf_num = 1
`,
    );
    const containerd = this.spawn('containerd', 'containerd', ['--config', dir('containerd.toml')]);
    await waitUntil(containerd, 'containerd', async () => {
      await run('ctr', ['-a', CONTAINERD_SOCKET, 'version'], { timeout: 5_000 });
      return true;
    });
  }

  private async startKubelet(): Promise<void> {
    const dir = (name: string) => join(NODE_STATE, 'kubelet', name);
    mkdirSync(dir('pki'), { recursive: true });
    const { pki } = this.cp;
    const client = await pki.client(`CN=system:node:${NODE_NAME}, O=system:nodes`);
    const serving = await pki.server(`CN=${NODE_NAME}`, { ips: [NODE_ADDRESS], dns: [NODE_NAME] });
    for (const [name, pem] of [
      ['ca.crt', pki.caPem],
      ['client.crt', client.certPem],
      ['client.key', client.keyPem],
      ['serving.crt', serving.certPem],
      ['serving.key', serving.keyPem],
    ] as const) {
      writeFileSync(dir(`pki/${name}`), pem, { mode: 0o600 });
    }
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    writeFileSync(
      dir('kubeconfig'),
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'node', cluster: { server: this.cp.server, 'certificate-authority-data': b64(pki.caPem) } }],
        users: [{ name: 'kubelet', user: { 'client-certificate-data': b64(client.certPem), 'client-key-data': b64(client.keyPem) } }],
        contexts: [{ name: 'node', context: { cluster: 'node', user: 'kubelet' } }],
        'current-context': 'node',
      }),
      { mode: 0o600 },
    );
    // Pods resolve nothing: there is no cluster DNS, and no query may leave the machine.
    writeFileSync(dir('resolv.conf'), 'nameserver 127.0.0.1\n');
    const [port, healthzPort] = [await freePort(), await freePort()];
    writeFileSync(
      dir('config.json'),
      JSON.stringify({
        apiVersion: 'kubelet.config.k8s.io/v1beta1',
        kind: 'KubeletConfiguration',
        // Machines here may boot cgroup v1, which 1.35 refuses unless told otherwise.
        failCgroupV1: false,
        // No systemd; containerd 1.6 cannot tell the kubelet its driver, so this one is what counts.
        cgroupDriver: 'cgroupfs',
        failSwapOn: false,
        containerRuntimeEndpoint: `unix://${CONTAINERD_SOCKET}`,
        imageServiceEndpoint: `unix://${CONTAINERD_SOCKET}`,
        address: NODE_ADDRESS,
        port,
        readOnlyPort: 0,
        healthzBindAddress: '127.0.0.1',
        healthzPort,
        tlsCertFile: dir('pki/serving.crt'),
        tlsPrivateKeyFile: dir('pki/serving.key'),
        authentication: { anonymous: { enabled: false }, webhook: { enabled: false }, x509: { clientCAFile: dir('pki/ca.crt') } },
        authorization: { mode: 'AlwaysAllow' },
        resolvConf: dir('resolv.conf'),
        podLogsDir: dir('pod-logs'),
        volumePluginDir: dir('volume-plugins'),
        maxPods: 30,
        serializeImagePulls: false,
        // A mounted ConfigMap follows its object within seconds, as the suites' reloads need.
        syncFrequency: '10s',
        evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '2%', 'imagefs.available': '2%', 'nodefs.inodesFree': '2%' },
        imageGCHighThresholdPercent: 99,
        imageGCLowThresholdPercent: 98,
        rotateCertificates: false,
      }),
    );
    const binDir = this.cp.binDir;
    const kubelet = this.spawn('kubelet', join(binDir, 'kubelet'), [
      `--config=${dir('config.json')}`,
      `--kubeconfig=${dir('kubeconfig')}`,
      `--root-dir=${dir('root')}`,
      `--cert-dir=${dir('pki')}`,
      `--node-ip=${NODE_ADDRESS}`,
      `--hostname-override=${NODE_NAME}`,
      '--v=1',
    ]);
    await waitUntil(kubelet, `Node ${NODE_NAME} Ready`, async () => {
      const res = await this.cp.api('GET', `/api/v1/nodes/${NODE_NAME}`);
      if (res.status !== 200) return false;
      const node = JSON.parse(res.body) as { status?: { conditions?: { type: string; status: string }[] } };
      return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
    });
  }
}
