// Several operator processes against one API server: the Lease decides which one reconciles, a killed
// leader is replaced once its Lease runs out, and a leader told to stop hands over at once.
import { CoordinationV1Api, CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { API_VERSION, GROUP, KIND, LEASE_NAME, PLURAL, VERSION } from '../../src/api/names.ts';
import type { ExternalIntegrationStatus } from '../../src/api/schema.ts';
import { installCrd } from '../support/injection.ts';
import { eventually, kubectlFor } from '../support/kube.ts';
import { startOperator, type OperatorProcess } from '../support/operator-process.ts';

const kubeconfig = inject('kubeconfig');
const kc = new KubeConfig();
kc.loadFromFile(kubeconfig);
const core = kc.makeApiClient(CoreV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);
const coordination = kc.makeApiClient(CoordinationV1Api);
const run = Date.now().toString(36);
const own = `bw-le-${run}`;
const apps = `le-apps-${run}`;

const LEASE_MS = 6_000;
const RETRY_MS = 500;
const ELECTION = ['--lease-duration=6s', '--renew-deadline=4s', `--retry-period=${RETRY_MS}ms`];
const processes: OperatorProcess[] = [];

async function operator(name: string): Promise<OperatorProcess> {
  const p = await startOperator({ kubeconfig, namespace: own, name, args: ELECTION });
  processes.push(p);
  return p;
}

const isLeader = async (p: OperatorProcess) => p.running() && (await p.metric('breakwater_operator_leader')) === 1;
const reconciles = (p: OperatorProcess) => p.metric('breakwater_operator_reconcile_total');

async function holder(): Promise<string> {
  const lease = await coordination.readNamespacedLease({ name: LEASE_NAME, namespace: own });
  return lease.spec?.holderIdentity ?? '';
}

/** Waits until exactly one of `candidates` leads and returns it. */
function leaderAmong(candidates: OperatorProcess[], timeoutMs = 30_000): Promise<OperatorProcess> {
  return eventually(
    'exactly one leader',
    async () => {
      const leading = [];
      for (const p of candidates) if (await isLeader(p)) leading.push(p);
      return { done: leading.length === 1 ? leading[0] : undefined, seen: leading.map((p) => p.name) };
    },
    timeoutMs,
    100,
  );
}

async function integration(name: string): Promise<void> {
  await custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    plural: PLURAL,
    namespace: apps,
    body: { apiVersion: API_VERSION, kind: KIND, metadata: { name }, spec: { upstream: { url: `https://${name}.example` } } },
  });
}

function configured(name: string): Promise<true> {
  return eventually(`${name} Ready`, async () => {
    const stored = (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: apps, name })) as {
      status?: ExternalIntegrationStatus;
    };
    const ready = stored.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
    return { done: ready ? true : undefined, seen: stored.status };
  });
}

beforeAll(async () => {
  await installCrd(kubectlFor(inject('k8sBinDir'), kubeconfig));
  await core.createNamespace({ body: { metadata: { name: own } } });
  await core.createNamespace({ body: { metadata: { name: apps } } });
});

afterAll(async () => {
  for (const p of processes) await p.kill();
  await core.deleteNamespace({ name: apps }).catch(() => undefined);
  await core.deleteNamespace({ name: own }).catch(() => undefined);
});

describe('two replicas', () => {
  let a: OperatorProcess;
  let b: OperatorProcess;
  let leader: OperatorProcess;
  let standby: OperatorProcess;

  beforeAll(async () => {
    [a, b] = await Promise.all([operator('operator-a'), operator('operator-b')]);
    leader = await leaderAmong([a, b]);
    standby = leader === a ? b : a;
  });

  it('exactly one reconciles; the other stands by', async () => {
    await integration('first');
    await configured('first');
    expect(await reconciles(leader)).toBeGreaterThan(0);
    expect(await reconciles(standby)).toBe(0);
    expect(await isLeader(standby)).toBe(false);
    // Both serve /readyz: a standby becomes ready (it serves the webhook once the leader has published
    // the certificate, which under load can come after the first reconcile) without ever leading.
    await eventually('the standby ready', async () => {
      const res = await fetch(`http://127.0.0.1:${standby.adminPort}/readyz`);
      const seen = `${res.status} ${await res.text()}`;
      return { done: res.status === 200 || undefined, seen };
    }, 20_000);
    expect(await isLeader(standby)).toBe(false);
    expect(await reconciles(standby)).toBe(0);
  });

  it('SIGKILL of the leader: the standby takes over within the lease duration and reconciles', async () => {
    const before = await holder();
    await leader.kill();
    const killedAt = Date.now();
    await leaderAmong([standby], LEASE_MS * 3);
    const takeoverMs = Date.now() - killedAt;
    console.log(`takeover after SIGKILL: ${takeoverMs} ms (lease ${LEASE_MS} ms, retry ${RETRY_MS} ms)`);
    // The standby counts the lease out from when it saw the last renewal, which came at most one retry
    // period before the kill and reached the standby at most one (jittered) retry period later. It
    // must not take over sooner either: that would be two leaders.
    expect(takeoverMs).toBeGreaterThanOrEqual(LEASE_MS - 2 * RETRY_MS);
    expect(takeoverMs).toBeLessThanOrEqual(LEASE_MS + 3 * RETRY_MS);
    expect(await holder()).not.toBe(before);

    await integration('second');
    await configured('second');
    expect(await reconciles(standby)).toBeGreaterThan(0);
  });

  it('SIGTERM of the leader releases the Lease: a standby takes over within a second or two', async () => {
    const current = standby;
    const next = await operator('operator-c');
    await leaderAmong([current, next]).then((l) => expect(l).toBe(current));
    expect(await reconciles(next)).toBe(0);

    const stopping = current.stop();
    const signalledAt = Date.now();
    await leaderAmong([next], 10_000);
    const handoverMs = Date.now() - signalledAt;
    console.log(`hand-over after SIGTERM: ${handoverMs} ms`);
    await stopping;
    expect(current.exitCode()).toBe(0);
    // Said on the way out (the log is flushed at exit): without the release, the standby would have
    // had to wait the lease out.
    expect(current.logs().map((l) => l.msg)).toContain('released leader lease');
    expect(handoverMs).toBeLessThan(2_000);

    await integration('third');
    await configured('third');
    expect(await reconciles(next)).toBeGreaterThan(0);
  });
});
