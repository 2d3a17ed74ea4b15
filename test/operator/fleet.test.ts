// The fleet view with real parts: a real API server, the real operator process, and three sidecar
// processes serving one integration, each against its own loopback vendor, each reporting with a
// ServiceAccount token bound to its own Pod object (minted by TokenRequest, as kubelet would).
import { createServer, type Server } from 'node:http';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import type { V1Pod } from '@kubernetes/client-node';
import { ANNOTATION_INJECT, API_VERSION, GROUP, KIND, PLURAL, REPORT_PATH, REPORT_TOKEN_AUDIENCE, VERSION, WEBHOOK_CERT_SECRET_NAME } from '../../src/api/names.ts';
import type { ExternalIntegrationSpec, ExternalIntegrationStatus } from '../../src/api/schema.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { installCrd } from '../support/injection.ts';
import { eventually, kubectlFor, kubectlPlugin } from '../support/kube.ts';
import { startOperator, type OperatorProcess } from '../support/operator-process.ts';
import { removeDirAtExit } from '../support/processes.ts';
import { spawnSidecar, type SidecarProcess } from '../support/sidecar-process.ts';

const kubeconfig = inject('kubeconfig');
const client = new KubeClient({ kubeconfig, userAgent: 'fleet-test' });
const run = Date.now().toString(36);
const own = `bw-fleet-${run}`;
const app = `fleet-${run}`;
const INTEGRATION = 'vendor';
const HEARTBEAT_S = 2;
const dir = mkdtempSync(join(tmpdir(), 'breakwater-fleet-'));
removeDirAtExit(dir);

let operator: OperatorProcess;
let ca: string;

interface Vendor {
  failing: boolean;
  /** When each request arrived. */
  readonly arrivals: number[];
  readonly server: Server;
  readonly url: string;
}

async function vendor(): Promise<Vendor> {
  const v = { failing: false, arrivals: [] as number[] } as Vendor;
  const server = createServer((_req, res) => {
    v.arrivals.push(Date.now());
    res.writeHead(v.failing ? 503 : 200).end(v.failing ? 'down' : 'ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(v, { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
}

interface Member {
  readonly pod: string;
  /** The Pod object as admitted: with the injected sidecar. */
  readonly spec: V1Pod;
  readonly vendor: Vendor;
  readonly sidecar: SidecarProcess;
}
const members: Member[] = [];

const SPEC = {
  retry: { maxAttempts: 1 },
  circuitBreaker: { consecutiveFailures: 2, halfOpenAfter: '15s' },
};

const injected = (pod: V1Pod) => pod.spec?.initContainers?.some((c) => c.name === 'breakwater') === true;

/**
 * A Pod object that asks for the sidecar, so the operator's webhook injects it (kwok runs nothing).
 * `dryRun` goes through admission and stores nothing.
 */
async function createPod(name: string, dryRun = false): Promise<V1Pod & { metadata: { uid: string } }> {
  const pod = await client.requestJson<V1Pod & { metadata: { uid: string } }>('POST', `/api/v1/namespaces/${app}/pods`, {
    ...(dryRun && { query: { dryRun: 'All' } }),
    body: { apiVersion: 'v1', kind: 'Pod', metadata: { name, annotations: { [ANNOTATION_INJECT]: 'true' } }, spec: { containers: [{ name: 'app', image: 'app:test' }] } },
  });
  if (!dryRun && !injected(pod)) throw new Error(`pod ${name} was admitted without the sidecar: the webhook did not answer (failurePolicy Ignore)`);
  return pod;
}

/** What kubelet mounts for a projected token: bound to the pod, for our audience. */
async function podToken(pod: string, uid: string, audience = REPORT_TOKEN_AUDIENCE): Promise<string> {
  const review = await client.requestJson<{ status: { token: string } }>('POST', `/api/v1/namespaces/${app}/serviceaccounts/default/token`, {
    body: {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { audiences: [audience], expirationSeconds: 3600, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod, uid } },
    },
  });
  return review.status.token;
}

/** A Pod object with a sidecar process serving `integration` with `spec` against vendor `v`, reporting as that pod. */
async function member(pod: string, integration = INTEGRATION, spec: object = SPEC, v?: Vendor, list: Member[] = members): Promise<Member> {
  const created = await createPod(pod);
  const uid = created.metadata.uid;
  v ??= await vendor();
  const config = join(dir, `${pod}.yaml`);
  writeFileSync(config, JSON.stringify({ apiVersion: API_VERSION, kind: KIND, metadata: { name: integration }, spec: { upstream: { url: v.url }, ...spec } }));
  const tokenFile = join(dir, `${pod}.token`);
  writeFileSync(tokenFile, await podToken(pod, uid));
  const sidecar = await spawnSidecar(
    [
      `--config=${config}`,
      '--port=0',
      '--admin-port=0',
      `--data-dir=${dir}/${pod}`,
      `--report-url=https://127.0.0.1:${operator.webhookPort}${REPORT_PATH}`,
      `--report-token-file=${tokenFile}`,
      `--report-interval=${HEARTBEAT_S}s`,
    ],
    { env: { BREAKWATER_REPORT_CA: ca } },
  );
  const m = { pod, spec: created, vendor: v, sidecar };
  list.push(m);
  return m;
}

async function call(m: Member, times: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < times; i++) {
    const res = await fetch(`http://127.0.0.1:${m.sidecar.port}/${INTEGRATION}/charge`);
    await res.arrayBuffer();
    statuses.push(res.status);
  }
  return statuses;
}

/** Its sidecar has neither exited nor been killed. */
const running = (m: Member) => m.sidecar.child.exitCode === null && m.sidecar.child.signalCode === null;

/**
 * Every member answering 200 and the status showing all of them closed: where a test that changes
 * vendors or breakers starts, so one test's failure does not fail the next ones too.
 */
async function allHealthy(answeringWithinMs = 30_000): Promise<ExternalIntegrationStatus> {
  const live = members.filter(running);
  await eventually('200 in every pod', async () => {
    const answers = await Promise.all(live.map((m) => call(m, 1)));
    return { done: answers.every(([code]) => code === 200) ? answers : undefined, seen: answers };
  }, answeringWithinMs);
  return fleetWhere(`${live.length} pods reporting, all closed`, (s) => s.pods?.reporting === live.length && s.circuit?.closed === live.length, 15_000);
}

async function status(integration = INTEGRATION): Promise<ExternalIntegrationStatus | undefined> {
  const stored = await client.getJson<{ status?: ExternalIntegrationStatus }>(`/apis/${GROUP}/${VERSION}/namespaces/${app}/${PLURAL}/${integration}`);
  return stored.status;
}

function fleetWhere(what: string, holds: (s: ExternalIntegrationStatus) => boolean, timeoutMs = 30_000, integration = INTEGRATION): Promise<ExternalIntegrationStatus> {
  return eventually(what, async () => {
    const s = await status(integration);
    return { done: s && holds(s) ? s : undefined, seen: s && { circuit: s.circuit, pods: s.pods, lastMinute: s.lastMinute, conditions: s.conditions } };
  }, timeoutMs);
}

const vendorHealthy = (s: ExternalIntegrationStatus) => s.conditions?.find((c) => c.type === 'VendorHealthy');

async function events(reason: string): Promise<{ note: string; type: string }[]> {
  const list = await client.getJson<{ items: { note: string; type: string; reason: string; regarding: { name: string } }[] }>(
    `/apis/events.k8s.io/v1/namespaces/${app}/events`,
  );
  return list.items.filter((e) => e.reason === reason && e.regarding.name === INTEGRATION);
}

/** kubectl itself, finding the plugin on PATH as a user's kubectl would. */
const kubectlBreakwater = kubectlPlugin(inject('k8sBinDir'), dir, { KUBECONFIG: kubeconfig });

async function report(token: string | undefined, sent: object = {}): Promise<{ status: number; body: string; retryAfter?: string }> {
  // The operator's certificate chains to its own CA; undici's fetch takes no CA, so node:https.
  const { request } = await import('node:https');
  const body = JSON.stringify({ heartbeatSeconds: 2, sharedStore: false, integrations: [], ...sent });
  return new Promise((resolve, reject) => {
    const req = request(
      `https://127.0.0.1:${operator.webhookPort}${REPORT_PATH}`,
      { method: 'POST', ca, headers: { 'content-type': 'application/json', ...(token && { authorization: `Bearer ${token}` }) } },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, ...(res.headers['retry-after'] && { retryAfter: res.headers['retry-after'] }) }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * What the operator and the sidecars said about reports, for a failed test: which reports were
 * refused or retried and when the fleet controller wrote, so a timing failure shows its timeline.
 */
async function reportTimeline(): Promise<string> {
  const results = ['accepted', 'rate_limited', 'error', 'unauthenticated', 'not_a_pod', 'bad_report'];
  const counts = await Promise.all(results.map(async (result) => `${result}=${await operator.metric('breakwater_operator_fleet_reports_total', { result }).catch(() => NaN)}`));
  // The fleet controller's debug lines come with every reconcile; what it did and what went wrong is at info and above.
  const said = (line: Record<string, unknown>) =>
    (line.level !== 'debug' || line.result === 'error') && (line.controller === 'fleet' || /fleet|report/i.test(String(line.msg ?? '')));
  const operatorLines = operator.logs().filter(said).slice(-30).map((l) => `  operator: ${JSON.stringify(l)}`);
  const sidecarLines = [...members, ...quotaMembers].flatMap((m) =>
    m.sidecar.output().split('\n').filter((l) => l.includes('fleet-report') || /"level":(40|50|60)/.test(l)).slice(-8).map((l) => `  ${m.pod}: ${l}`),
  );
  return [`reports at the operator: ${counts.join(' ')}`, ...operatorLines, ...sidecarLines].join('\n');
}

beforeEach(({ onTestFailed }) => {
  onTestFailed(async () => console.log(`${new Date().toISOString()} fleet test failed; report timeline:\n${await reportTimeline()}`));
});

beforeAll(async () => {
  await installCrd(kubectlFor(inject('k8sBinDir'), kubeconfig));
  for (const name of [own, app]) await client.requestJson('POST', '/api/v1/namespaces', { body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } });
  await eventually('the default ServiceAccount', async () => {
    const found = await client.getJson(`/api/v1/namespaces/${app}/serviceaccounts/default`).catch(() => undefined);
    return { done: found, seen: 'absent' };
  });
  await client.requestJson('POST', `/apis/${GROUP}/${VERSION}/namespaces/${app}/${PLURAL}`, {
    body: { apiVersion: API_VERSION, kind: KIND, metadata: { name: INTEGRATION }, spec: { upstream: { url: 'http://127.0.0.1:9' }, ...SPEC } },
  });
  operator = await startOperator({ kubeconfig, namespace: own, args: ['--leader-elect=false'] });
  ca = await eventually('the webhook CA', async () => {
    const secret = await client.getJson<{ data?: Record<string, string> }>(`/api/v1/namespaces/${own}/secrets/${WEBHOOK_CERT_SECRET_NAME}`).catch(() => undefined);
    const pem = secret?.data?.['ca.crt'];
    return { done: pem && Buffer.from(pem, 'base64').toString('utf8'), seen: 'no Secret yet' };
  });
  // The operator writes that Secret before it registers the webhook, and the API server sees the
  // registration a moment later: a pod created in between is admitted without the sidecar.
  await eventually('the webhook injecting', async () => {
    const probe = await createPod('probe', true);
    return { done: injected(probe) || undefined, seen: 'a dry-run pod admitted without the sidecar' };
  }, 30_000);
  for (const pod of ['pod-a', 'pod-b', 'pod-c']) await member(pod);
});

afterAll(async () => {
  for (const m of [...members, ...quotaMembers]) {
    m.sidecar.child.kill('SIGTERM');
    await m.sidecar.exited;
    m.vendor.server.close();
  }
  quotaVendor?.server.close();
  await operator?.stop();
  for (const name of [app, own]) await client.requestJson('DELETE', `/api/v1/namespaces/${name}`).catch(() => undefined);
  await client.close();
});

describe('fleet view', () => {
  it('counts every reporting pod, closed, with VendorHealthy True', async () => {
    for (const m of members) expect(await call(m, 3)).toEqual([200, 200, 200]);
    const s = await fleetWhere('3 pods reporting, all closed', (s) => s.pods?.reporting === 3 && s.circuit?.closed === 3 && (s.lastMinute?.calls ?? 0) >= 9, 30_000);
    expect(s.circuit).toMatchObject({ open: 0, halfOpen: 0, closed: 3 });
    expect(s.pods).toEqual({ reporting: 3, needRestart: 0 });
    expect(vendorHealthy(s)).toMatchObject({ status: 'True', reason: 'CircuitClosed', message: 'circuit closed in all 3 pods' });
    // The Ready condition the integration controller writes is still there beside it.
    expect(s.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    const records = await client.getJson<{ items: unknown[] }>(`/apis/coordination.k8s.io/v1/namespaces/${own}/leases`, {
      query: { labelSelector: 'app.kubernetes.io/component=fleet-report' },
    });
    expect(records.items).toHaveLength(3);
  });

  it('injects the report endpoint, its CA and a pod-bound token for our audience into the sidecar only', () => {
    const pod = members[0]!.spec;
    const sidecar = pod.spec?.initContainers?.find((c) => c.name === 'breakwater');
    expect(sidecar?.env).toEqual(
      expect.arrayContaining([
        { name: 'BREAKWATER_REPORT_URL', value: `https://127.0.0.1:${operator.webhookPort}${REPORT_PATH}` },
        { name: 'BREAKWATER_REPORT_CA', value: ca },
      ]),
    );
    expect(sidecar?.volumeMounts).toContainEqual({ name: 'breakwater-token', mountPath: '/var/run/secrets/breakwater.dev/fleet', readOnly: true });
    expect(pod.spec?.volumes).toContainEqual({
      name: 'breakwater-token',
      projected: { defaultMode: 420, sources: [{ serviceAccountToken: { audience: REPORT_TOKEN_AUDIENCE, expirationSeconds: 3600, path: 'token' } }] },
    });
    const app = pod.spec?.containers.find((c) => c.name === 'app');
    expect(app?.volumeMounts?.some((m) => m.name === 'breakwater-token')).toBeFalsy();
    expect(app?.env?.some((e) => e.name.startsWith('BREAKWATER_REPORT'))).toBe(false);
  });

  it('shows 2/3 open within seconds of two vendors failing, records an Event, and clears on recovery', async () => {
    const [, b, c] = members as [Member, Member, Member];
    b.vendor.failing = true;
    c.vendor.failing = true;
    try {
      expect(await call(b, 3)).toEqual([503, 503, 503]);
      expect(await call(c, 3)).toEqual([503, 503, 503]);
      const opened = Date.now();
      const s = await fleetWhere('2/3 open', (s) => s.circuit?.open === 2, 10_000);
      const seconds = (Date.now() - opened) / 1000;
      console.log(`fleet: 2/3 open in the status ${seconds.toFixed(1)} s after the breakers opened`);
      expect(seconds).toBeLessThan(5);
      expect(s.circuit).toMatchObject({ open: 2, closed: 1, halfOpen: 0 });
      expect(s.circuit?.since).toBeDefined();
      expect(s.circuit?.lastError).toMatchObject({ error: expect.stringMatching(/^(vendor_5xx|circuit_open)$/) });
      expect(['pod-b', 'pod-c']).toContain(s.circuit?.lastError?.pod);
      // Each breaker opened on its second failure and reported at once; the third call may come after.
      expect(s.lastMinute?.failures).toBeGreaterThanOrEqual(4);
      expect(vendorHealthy(s)).toMatchObject({ status: 'False', reason: 'CircuitOpen' });
      expect(vendorHealthy(s)?.message).toMatch(/^circuit open in 2\/3 pods since /);
      const warned = await eventually('a CircuitOpen Event', async () => {
        const found = (await events('CircuitOpen')).find((e) => e.note.startsWith('circuit open in 2/3 pods'));
        return { done: found, seen: await events('CircuitOpen') };
      }, 10_000);
      expect(warned.type).toBe('Warning');

      const unhealthy = await kubectlBreakwater(['status', '-A']);
      console.log(`$ kubectl breakwater status -A   (exit ${unhealthy.code})\n${unhealthy.stdout}`);
      expect(unhealthy.code).toBe(1);
      expect(unhealthy.stdout).toMatch(new RegExp(`^${app}\\s+vendor\\s+True\\s+False\\s+2/3 open\\s+`, 'm'));
      expect(unhealthy.stdout).toContain(`${app}/vendor: circuit open in 2/3 pods since`);
      const json = await kubectlBreakwater(['status', '-n', app, '-o', 'json']);
      expect(json.code).toBe(1);
      const parsed = JSON.parse(json.stdout) as { healthy: boolean; integrations: { name: string; circuit: object; pods: object; lastMinute: { errorRate: number } }[] };
      expect(parsed.healthy).toBe(false);
      expect(parsed.integrations).toHaveLength(1);
      expect(parsed.integrations[0]).toMatchObject({ name: 'vendor', circuit: { open: 2, closed: 1 }, pods: { reporting: 3, injected: 3, needRestart: 0 } });
      expect(parsed.integrations[0]!.lastMinute.errorRate).toBeGreaterThan(0);
    } finally {
      // Whatever failed above, the tests after this one start from healthy vendors.
      b.vendor.failing = false;
      c.vendor.failing = false;
    }
    // After halfOpenAfter (15s) the next call goes through as the probe, which the status shows as
    // half-open; the probe succeeds and closes the breaker.
    await fleetWhere('both half-open', (s) => s.circuit?.halfOpen === 2, 25_000);
    expect(await call(b, 1)).toEqual([200]);
    expect(await call(c, 1)).toEqual([200]);
    const healed = await fleetWhere('all closed again', (s) => s.circuit?.closed === 3, 10_000);
    expect(healed.circuit?.since).toBeUndefined();
    expect(vendorHealthy(healed)).toMatchObject({ status: 'True', reason: 'CircuitClosed' });
    const closed = await eventually('a CircuitClosed Event', async () => {
      const found = (await events('CircuitClosed'))[0];
      return { done: found, seen: 'none' };
    }, 10_000);
    expect(closed).toMatchObject({ type: 'Normal', note: 'circuit closed in all 3 pods' });
    const healthy = await kubectlBreakwater(['status', '-n', app]);
    console.log(`$ kubectl breakwater status -n ${app}   (exit ${healthy.code})\n${healthy.stdout}`);
    expect(healthy.code).toBe(0);
    expect(healthy.stdout).toMatch(/^vendor\s+True\s+True\s+closed\s+/m);
  });

  it('isolates the vendor with kubectl breakwater isolate: every pod open without calling it, VendorHealthy CircuitForcedOpen, and --off closes them', async () => {
    // What the operator's ConfigMap carries to each pod: the stored spec, here with each pod's own vendor.
    const propagate = async () => {
      const { spec } = await client.getJson<{ spec: ExternalIntegrationSpec }>(`/apis/${GROUP}/${VERSION}/namespaces/${app}/${PLURAL}/${INTEGRATION}`);
      for (const m of members) {
        const config = join(dir, `${m.pod}.yaml`);
        writeFileSync(`${config}.tmp`, JSON.stringify({ apiVersion: API_VERSION, kind: KIND, metadata: { name: INTEGRATION }, spec: { ...spec, upstream: { url: m.vendor.url } } }));
        renameSync(`${config}.tmp`, config);
      }
    };
    await allHealthy();
    const isolated = await kubectlBreakwater(['isolate', INTEGRATION, '-n', app]);
    expect(isolated.code).toBe(0);
    await propagate();
    try {
      await eventually('circuit_open in every pod', async () => {
        const answers = await Promise.all(members.map((m) => call(m, 1)));
        return { done: answers.every(([code]) => code === 503) ? answers : undefined, seen: answers };
      }, 10_000);
      // Each pod has reloaded: from now on no call reaches a vendor.
      const arrivals = members.map((m) => m.vendor.arrivals.length);
      for (const m of members) expect(await call(m, 3)).toEqual([503, 503, 503]);
      expect(members.map((m) => m.vendor.arrivals.length)).toEqual(arrivals);
      const held = await fleetWhere('3/3 held open', (s) => s.circuit?.open === 3 && vendorHealthy(s)?.reason === 'CircuitForcedOpen');
      expect(vendorHealthy(held)).toMatchObject({ status: 'False', message: 'circuit held open by circuitBreaker.forceOpen in 3/3 pods' });
      const shown = await kubectlBreakwater(['status', '-n', app]);
      console.log(`$ kubectl breakwater status -n ${app}   (exit ${shown.code})\n${shown.stdout}`);
      expect(shown.code).toBe(1);
      expect(shown.stdout).toMatch(/^vendor\s+True\s+False\s+3\/3 open\s+/m);
      expect(shown.stdout).toContain(`${app}/vendor: circuit held open by circuitBreaker.forceOpen in 3/3 pods`);
    } finally {
      // Released whatever failed above, so the tests after this one find the vendor in service.
      const off = await kubectlBreakwater(['isolate', INTEGRATION, '-n', app, '--off']);
      await propagate();
      expect(off.code).toBe(0);
    }
    const released = await allHealthy(10_000);
    expect(released.circuit?.closed).toBe(3);
    expect(vendorHealthy(released)).toMatchObject({ status: 'True', reason: 'CircuitClosed' });
  });

  it('counts a killed sidecar out once its heartbeats lapse', async () => {
    await allHealthy();
    const c = members[2]!;
    c.sidecar.child.kill('SIGKILL');
    await c.sidecar.exited;
    const killed = Date.now();
    const s = await fleetWhere('2 pods reporting', (s) => s.pods?.reporting === 2, 30_000);
    const seconds = (Date.now() - killed) / 1000;
    console.log(`fleet: killed sidecar counted out after ${seconds.toFixed(1)} s (heartbeat ${HEARTBEAT_S} s, lapse after 3)`);
    // Not before three heartbeats have passed since its last report (sent up to a heartbeat and one
    // 500 ms sample before the kill), and soon after.
    expect(seconds).toBeGreaterThan(HEARTBEAT_S * 2 - 0.6);
    expect(seconds).toBeLessThan(HEARTBEAT_S * 3 + 6);
    expect(s.circuit).toMatchObject({ closed: 2, open: 0 });
    const records = await eventually('the lapsed record deleted', async () => {
      const list = await client.getJson<{ items: unknown[] }>(`/apis/coordination.k8s.io/v1/namespaces/${own}/leases`, {
        query: { labelSelector: 'app.kubernetes.io/component=fleet-report' },
      });
      return { done: list.items.length === 2 ? list.items : undefined, seen: list.items.length };
    }, 10_000);
    expect(records).toHaveLength(2);
  });

  it('refuses a report without a valid pod-bound token for our audience', async () => {
    const none = await report(undefined);
    expect(none.status).toBe(401);
    const forged = await report('eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6eDp5In0.c2ln');
    expect(forged.status).toBe(401);
    expect(JSON.parse(forged.body)).toMatchObject({ error: 'unauthenticated' });
    // A real token of a real pod, but minted for another audience (the API server's own).
    const pod = await client.getJson<{ metadata: { uid: string } }>(`/api/v1/namespaces/${app}/pods/pod-a`);
    const otherAudience = await report(await podToken('pod-a', pod.metadata.uid, 'https://kubernetes.default.svc'));
    expect(otherAudience.status).toBe(401);
    // Our audience, but not bound to any pod: it cannot say which pod it speaks for.
    const unbound = await client.requestJson<{ status: { token: string } }>('POST', `/api/v1/namespaces/${app}/serviceaccounts/default/token`, {
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: [REPORT_TOKEN_AUDIENCE], expirationSeconds: 600 } },
    });
    const notAPod = await report(unbound.status.token);
    expect(notAPod.status).toBe(403);
    expect(JSON.parse(notAPod.body)).toMatchObject({ error: 'not_a_pod' });
    const s = await status();
    expect(s?.pods?.reporting).toBe(2);
    expect(await operator.metric('breakwater_operator_fleet_reports_total', { result: 'unauthenticated' })).toBeGreaterThanOrEqual(3);
  });

  it('refuses a pod\'s report that comes hard on the heels of its last, and takes one a little under a second after', async () => {
    const pod = await createPod('pod-flood');
    const token = await podToken('pod-flood', pod.metadata.uid);
    expect((await report(token)).status).toBe(202);
    const flood = await report(token);
    expect(flood).toMatchObject({ status: 429, retryAfter: '1' });
    expect(JSON.parse(flood.body)).toMatchObject({ error: 'rate_limited', message: 'one report per pod per 1000 ms' });
    // The sidecar spaces its reports a second apart by its own clock; one that arrives a little early is jitter.
    await new Promise((r) => setTimeout(r, 700));
    expect((await report(token)).status).toBe(202);
    expect((await report(token, { leaving: true })).status).toBe(202);
  });
});

const QUOTA = 'quota';
const QUOTA_SPEC = { retry: { maxAttempts: 1 }, rateLimit: { requests: 30, per: '1s', burst: 3, whenExceeded: 'reject', scope: 'fleet' } };
const quotaMembers: Member[] = [];
let quotaVendor: Vendor | undefined;

/**
 * Drives every live quota sidecar at 40 calls/s each (far above its share) for `ms`, and returns the
 * calls the vendor received in that time and the calls sent (fewer than offered when answers are slow).
 */
async function measure(ms: number): Promise<{ arrived: number; sent: number }> {
  const live = quotaMembers.filter(running);
  const start = Date.now();
  const end = start + ms;
  let sent = 0;
  await Promise.all(
    live.map(async (m) => {
      for (let next = Date.now(); next < end; next += 25) {
        await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
        if (Date.now() >= end) break;
        sent++;
        const res = await fetch(`http://127.0.0.1:${m.sidecar.port}/${QUOTA}/charge`);
        await res.arrayBuffer();
      }
    }),
  );
  return { arrived: quotaVendor!.arrivals.filter((t) => t >= start && t < end).length, sent };
}

/** Waits until `pods` report for the quota integration, then two heartbeats so every one has its share. */
async function settled(pods: number): Promise<void> {
  await fleetWhere(`${pods} pods reporting for ${QUOTA}`, (s) => s.pods?.reporting === pods, 30_000, QUOTA);
  await new Promise((r) => setTimeout(r, 2 * HEARTBEAT_S * 1000 + 500));
}

describe('fleet quota (rateLimit.scope: fleet)', () => {
  const windowS = 5;
  const ceiling = (pods: number) => 30 * windowS + 3 * pods;

  beforeAll(async () => {
    await client.requestJson('POST', `/apis/${GROUP}/${VERSION}/namespaces/${app}/${PLURAL}`, {
      body: { apiVersion: API_VERSION, kind: KIND, metadata: { name: QUOTA }, spec: { upstream: { url: 'http://127.0.0.1:9' }, ...QUOTA_SPEC } },
    });
    quotaVendor = await vendor();
    for (const pod of ['quota-1', 'quota-2', 'quota-3']) await member(pod, QUOTA, QUOTA_SPEC, quotaVendor, quotaMembers);
  });

  it('holds 30/s in sum across 3 sidecars, then across 2, then across 5', async () => {
    await settled(3);
    const three = await measure(windowS * 1000);
    await fleetWhere('3 pods at their share', (s) => s.pods?.reporting === 3, 5_000, QUOTA);
    const last = quotaMembers.at(-1)!;
    last.sidecar.child.kill('SIGTERM');
    await last.sidecar.exited;
    await settled(2);
    const two = await measure(windowS * 1000);
    for (const pod of ['quota-4', 'quota-5', 'quota-6']) await member(pod, QUOTA, QUOTA_SPEC, quotaVendor, quotaMembers);
    await settled(5);
    const five = await measure(windowS * 1000);
    console.log(
      `fleet quota 30/s (burst 3 per pod share), ${windowS} s windows, each sidecar offered 40 calls/s: ` +
        `3 sidecars ${(three.arrived / windowS).toFixed(1)}/s, 2 sidecars ${(two.arrived / windowS).toFixed(1)}/s, 5 sidecars ${(five.arrived / windowS).toFixed(1)}/s at the vendor ` +
        `(${three.sent}, ${two.sent} and ${five.sent} calls sent)`,
    );
    expect(three.arrived).toBeLessThanOrEqual(ceiling(3));
    expect(two.arrived).toBeLessThanOrEqual(ceiling(2));
    expect(five.arrived).toBeLessThanOrEqual(ceiling(5));
    // And the quota is used, not starved: each pod's share refills while it is offered more. (A machine
    // too busy to send the calls on time sends fewer; then the quota is measured against what was sent.)
    for (const { arrived, sent } of [three, two, five]) expect(arrived).toBeGreaterThanOrEqual(Math.min(30 * windowS, sent) * 0.8);
  });

  it('answers a departing sidecar by counting it out at once', async () => {
    const s = await status(QUOTA);
    expect(s?.pods?.reporting).toBe(5);
    const gone = quotaMembers.find((m) => m.pod === 'quota-4')!;
    gone.sidecar.child.kill('SIGTERM');
    await gone.sidecar.exited;
    const left = Date.now();
    await fleetWhere('4 pods reporting', (st) => st.pods?.reporting === 4, 10_000, QUOTA);
    // Well before three heartbeats (6 s) would have lapsed.
    expect(Date.now() - left).toBeLessThan(3_000);
  });
});
