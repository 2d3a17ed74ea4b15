// A real Kubernetes control plane as plain loopback processes, the way controller-runtime's envtest
// runs one: etcd and kube-apiserver with a throwaway PKI (tier 1), plus on request
// kube-controller-manager, kube-scheduler and kwok with one fake Node (tier 2), so that a Deployment
// gets a ReplicaSet and Running Pods without a kubelet or a container runtime.
//
// Binaries come from hack/k8s-tools.sh. Everything listens on 127.0.0.1 only. Pod IPs that kwok hands
// out are fake and must never be dialled.
//
// The k8s test project shares one tier-2 control plane (test/support/k8s-global-setup.ts). A test that
// disrupts the API server (restartApiServer, compactEtcd) starts a tier-1 one of its own instead.
// Tier 3 is tier 2 without kwok, for a real node (test/support/real-node.ts): the API server listens on
// the address pods reach it at, authorises kubelets as nodes, and calls webhooks at their Service's
// endpoints (no kube-proxy turns a ClusterIP into anything on that node).
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPki, type Pki } from './pki.ts';
import {
  forgetDir,
  freePort,
  isRunning,
  logTail,
  removeDirAtExit,
  startProcess,
  stopProcess,
  type Managed,
} from './processes.ts';

export interface ControlPlaneOptions {
  /** Folder holding etcd, kube-apiserver, … (what hack/k8s-tools.sh prints). */
  binDir: string;
  /**
   * 1: etcd + kube-apiserver. 2: also controller-manager, scheduler and kwok with Node kwok-node-0.
   * 3: controller-manager and scheduler, for a real node.
   */
  tier?: 1 | 2 | 3;
  /** Where kube-apiserver listens and what it advertises; 127.0.0.1 unless pods must reach it. */
  address?: string;
  /**
   * kube-apiserver --min-request-timeout: a watch without timeoutSeconds is closed by the server after
   * between this and twice this many seconds (default 1800), so clients must re-watch.
   */
  minRequestTimeoutSeconds?: number;
  /** More kube-apiserver flags, e.g. `--watch-cache=false` so compactEtcd() reaches watchers directly. */
  apiServerArgs?: string[];
}

export interface ApiResponse {
  status: number;
  body: string;
}

export const FAKE_NODE = 'kwok-node-0';
// Addresses kwok gives Pods and the Node. They exist only in API objects; nothing listens there.
const FAKE_POD_CIDR = '10.244.0.1/24';
const FAKE_NODE_IP = '10.244.255.1';

const READY_TIMEOUT_MS = 90_000;
const POLL_MS = 250;

export class ControlPlane {
  readonly binDir: string;
  readonly dir: string;
  readonly kubeconfigPath: string;
  readonly server: string;
  readonly etcdUrl: string;
  readonly pki: Pki;
  private readonly apiServerArgv: string[];
  private readonly procs: Managed[] = [];
  private apiServer: Managed | undefined;
  private stopped = false;

  private constructor(binDir: string, dir: string, pki: Pki, server: string, etcdPort: number, apiServerArgv: string[]) {
    this.binDir = binDir;
    this.dir = dir;
    this.pki = pki;
    this.kubeconfigPath = join(dir, 'kubeconfig');
    this.server = server;
    this.etcdUrl = `http://127.0.0.1:${etcdPort}`;
    this.apiServerArgv = apiServerArgv;
  }

  static async start(options: ControlPlaneOptions): Promise<ControlPlane> {
    const tier = options.tier ?? 1;
    const address = options.address ?? '127.0.0.1';
    const dir = mkdtempSync(join(tmpdir(), 'breakwater-k8s-'));
    removeDirAtExit(dir);
    const pki = await createPki({ apiServerIps: address === '127.0.0.1' ? [] : [address] });
    const f = (name: string): string => join(dir, name);
    writeFileSync(f('ca.crt'), pki.caPem);
    writeFileSync(f('apiserver.crt'), pki.apiServer.certPem);
    writeFileSync(f('apiserver.key'), pki.apiServer.keyPem, { mode: 0o600 });
    writeFileSync(f('sa.key'), pki.serviceAccountKeyPem, { mode: 0o600 });
    writeFileSync(f('sa.pub'), pki.serviceAccountPubPem);
    mkdirSync(f('logs'));
    // The API server's client certificate towards kubelets (logs, exec), in the group that may.
    const kubeletClient = await pki.client('CN=kube-apiserver-kubelet-client, O=system:masters');
    writeFileSync(f('kubelet-client.crt'), kubeletClient.certPem);
    writeFileSync(f('kubelet-client.key'), kubeletClient.keyPem, { mode: 0o600 });

    const [etcdPort, etcdPeerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    const apiServerArgv = [
      `--etcd-servers=http://127.0.0.1:${etcdPort}`,
      `--bind-address=${address}`,
      `--advertise-address=${address}`,
      `--secure-port=${apiPort}`,
      `--cert-dir=${f('apiserver-certs')}`,
      `--tls-cert-file=${f('apiserver.crt')}`,
      `--tls-private-key-file=${f('apiserver.key')}`,
      `--client-ca-file=${f('ca.crt')}`,
      `--service-account-issuer=https://${address}:${apiPort}`,
      `--service-account-key-file=${f('sa.pub')}`,
      `--service-account-signing-key-file=${f('sa.key')}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      '--allow-privileged=true',
      ...(tier === 3
        ? [
            '--authorization-mode=Node,RBAC',
            '--enable-admission-plugins=NodeRestriction',
            '--enable-aggregator-routing=true',
            `--kubelet-client-certificate=${f('kubelet-client.crt')}`,
            `--kubelet-client-key=${f('kubelet-client.key')}`,
            `--kubelet-certificate-authority=${f('ca.crt')}`,
            '--kubelet-preferred-address-types=InternalIP',
          ]
        : [
            '--authorization-mode=RBAC',
            // Publishing 127.0.0.1 as the `kubernetes` Service's endpoint would mean nothing inside a pod.
            '--endpoint-reconciler-type=none',
          ]),
      '--profiling=false',
      // Without it a SIGTERM waits for open watches (every controller holds some) until stopProcess
      // gives up and SIGKILLs: a tier-2 restart took 13 s instead of 4.5 s.
      '--shutdown-watch-termination-grace-period=2s',
      // Without a controller-manager nobody creates the `default` ServiceAccount, and this plugin would
      // then refuse every Pod.
      ...(tier === 1 ? ['--disable-admission-plugins=ServiceAccount'] : []),
      ...(options.minRequestTimeoutSeconds === undefined
        ? []
        : [`--min-request-timeout=${options.minRequestTimeoutSeconds}`]),
      ...(options.apiServerArgs ?? []),
    ];
    const cp = new ControlPlane(options.binDir, dir, pki, `https://${address}:${apiPort}`, etcdPort, apiServerArgv);
    try {
      writeFileSync(cp.kubeconfigPath, cp.kubeconfig(), { mode: 0o600 });
      const etcd = cp.spawn('etcd', [
        '--name=default',
        `--data-dir=${f('etcd')}`,
        `--listen-client-urls=${cp.etcdUrl}`,
        `--advertise-client-urls=${cp.etcdUrl}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
        `--initial-cluster=default=http://127.0.0.1:${etcdPeerPort}`,
        // Test data is thrown away, so durability buys nothing and fsync costs a lot on shared disks.
        '--unsafe-no-fsync=true',
        '--log-level=warn',
      ]);
      await waitUntil(etcd, 'etcd /health', async () => {
        const res = await fetch(`${cp.etcdUrl}/health`);
        return res.ok && ((await res.json()) as { health?: string }).health === 'true';
      });
      await cp.startApiServer();
      if (tier > 1) await cp.startWorkloadControllers(tier === 2);
    } catch (err) {
      await cp.stop();
      throw err;
    }
    return cp;
  }

  /** Stops kube-apiserver and starts it again on the same port and etcd; waits for /readyz. */
  async restartApiServer(): Promise<void> {
    if (this.apiServer) {
      await stopProcess(this.apiServer);
      this.procs.splice(this.procs.indexOf(this.apiServer), 1);
    }
    await this.startApiServer();
  }

  /**
   * Compacts etcd at its current revision, so a list or watch that reaches etcd with an older
   * resourceVersion gets 410 Gone. Returns that revision. The API server's watch cache still serves
   * recent history; start with `apiServerArgs: ['--watch-cache=false']` to expose watchers to it.
   */
  async compactEtcd(): Promise<number> {
    const range = await this.etcdCall('/v3/kv/range', { key: Buffer.from('/').toString('base64'), limit: 1 });
    const revision = Number((range as { header: { revision: string } }).header.revision);
    await this.etcdCall('/v3/kv/compaction', { revision, physical: true });
    return revision;
  }

  /** One request to the API server as the admin user. */
  async api(method: string, path: string, body?: unknown): Promise<ApiResponse> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        `${this.server}${path}`,
        {
          method,
          ca: this.pki.caPem,
          cert: this.pki.admin.certPem,
          key: this.pki.admin.keyPem,
          headers: payload === undefined ? {} : { 'content-type': 'application/json' },
          timeout: 10_000,
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in 10s`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const p of [...this.procs].reverse()) await stopProcess(p);
    this.procs.length = 0;
    rmSync(this.dir, { recursive: true, force: true });
    forgetDir(this.dir);
  }

  private kubeconfig(): string {
    const b64 = (s: string): string => Buffer.from(s).toString('base64');
    // Certificates are embedded so the file works on its own for kubectl, helm and client libraries.
    return JSON.stringify(
      {
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'breakwater-test', cluster: { server: this.server, 'certificate-authority-data': b64(this.pki.caPem) } }],
        users: [
          {
            name: 'admin',
            user: { 'client-certificate-data': b64(this.pki.admin.certPem), 'client-key-data': b64(this.pki.admin.keyPem) },
          },
        ],
        contexts: [{ name: 'breakwater-test', context: { cluster: 'breakwater-test', user: 'admin', namespace: 'default' } }],
        'current-context': 'breakwater-test',
      },
      null,
      2,
    );
  }

  private spawn(name: string, args: string[], env?: NodeJS.ProcessEnv): Managed {
    const p = startProcess(name, join(this.binDir, name), args, join(this.dir, 'logs', `${name}.log`), env);
    this.procs.push(p);
    return p;
  }

  private async startApiServer(): Promise<void> {
    this.apiServer = this.spawn('kube-apiserver', this.apiServerArgv);
    await waitUntil(this.apiServer, 'kube-apiserver /readyz', async () => (await this.api('GET', '/readyz')).status === 200);
  }

  private async startWorkloadControllers(withKwok: boolean): Promise<void> {
    const kc = this.kubeconfigPath;
    const common = (port: number, name: string): string[] => [
      `--kubeconfig=${kc}`,
      `--authentication-kubeconfig=${kc}`,
      `--authorization-kubeconfig=${kc}`,
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
      `--secure-port=${port}`,
      `--cert-dir=${join(this.dir, `${name}-certs`)}`,
    ];
    const kcmPort = await freePort();
    const kcm = this.spawn('kube-controller-manager', [
      ...common(kcmPort, 'kcm'),
      `--root-ca-file=${join(this.dir, 'ca.crt')}`,
      `--service-account-private-key-file=${join(this.dir, 'sa.key')}`,
      '--use-service-account-credentials=false',
    ]);
    const schedPort = await freePort();
    const scheduler = this.spawn('kube-scheduler', common(schedPort, 'scheduler'));
    await waitUntil(kcm, 'kube-controller-manager /healthz', () => selfSignedOk(kcmPort));
    await waitUntil(scheduler, 'kube-scheduler /healthz', () => selfSignedOk(schedPort));
    // Pods in `default` would be refused until the controller-manager has created its ServiceAccount.
    await waitUntil(kcm, 'ServiceAccount default/default', async () => {
      return (await this.api('GET', '/api/v1/namespaces/default/serviceaccounts/default')).status === 200;
    });
    if (withKwok) await this.startKwok();
  }

  private async startKwok(): Promise<void> {
    const kc = this.kubeconfigPath;
    // kwok always loads $KWOK_WORKDIR/kwok.yaml (default ~/.kwok); an empty work dir keeps a developer's
    // own stages out, so v0.7's built-in ones apply.
    const kwok = this.spawn(
      'kwok',
      [
        `--kubeconfig=${kc}`,
        '--manage-all-nodes=false',
        '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
        `--cidr=${FAKE_POD_CIDR}`,
        `--node-ip=${FAKE_NODE_IP}`,
        '--node-lease-duration-seconds=40',
      ],
      { ...process.env, KWOK_WORKDIR: join(this.dir, 'kwok') },
    );

    const created = await this.api('POST', '/api/v1/nodes', fakeNode());
    if (created.status !== 201) throw new Error(`creating Node ${FAKE_NODE}: ${created.status} ${created.body}`);
    await waitUntil(kwok, `Node ${FAKE_NODE} Ready (kwok)`, async () => {
      const res = await this.api('GET', `/api/v1/nodes/${FAKE_NODE}`);
      const node = JSON.parse(res.body) as { status?: { conditions?: { type: string; status: string }[] } };
      return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
    });
  }

  private async etcdCall(path: string, body: unknown): Promise<unknown> {
    const res = await fetch(`${this.etcdUrl}${path}`, { method: 'POST', body: JSON.stringify(body) });
    const text = await res.text();
    if (!res.ok) throw new Error(`etcd ${path}: ${res.status} ${text}`);
    return JSON.parse(text);
  }
}

function fakeNode(): unknown {
  const resources = { cpu: '32', memory: '256Gi', pods: '110' };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: FAKE_NODE,
      annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
      labels: {
        'kubernetes.io/hostname': FAKE_NODE,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        type: 'kwok',
      },
    },
    status: { allocatable: resources, capacity: resources },
  };
}

/** /healthz of a component serving a certificate it generated for itself; we only need a 200. */
async function selfSignedOk(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(`https://127.0.0.1:${port}/healthz`, { rejectUnauthorized: false, timeout: 5_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** Polls check until it returns true; fails fast with the log tail when the process dies. */
export async function waitUntil(proc: Managed, what: string, check: () => Promise<boolean>, timeoutMs = READY_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    if (!isRunning(proc)) throw new Error(`${proc.name} exited while waiting for ${what}:\n${logTail(proc)}`);
    try {
      if (await check()) return;
    } catch (err) {
      lastError = String(err);
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what} ${lastError}\n${logTail(proc)}`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
