// `promtool check metrics` on what the two programs really expose: the sidecar after calls that touch
// every one of its series (retries, a fallback, the breaker, the rate limit, the bulkhead, an unknown
// name, a config reload, a decision observed), and the operator after it has reconciled and admitted a pod.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ControlPlane } from '../support/control-plane.ts';
import { installCrd } from '../support/injection.ts';
import { eventually, kubectlFor, ok } from '../support/kube.ts';
import { startOperator, type OperatorProcess } from '../support/operator-process.ts';
import { promtoolAt } from '../support/promtool.ts';
import { spawnSidecar, type SidecarProcess } from '../support/sidecar-process.ts';
import { startUpstream, type ScriptedUpstream } from '../support/upstream.ts';

const promtool = promtoolAt(inject('promtool'));

async function scrape(adminPort: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
  expect(res.status).toBe(200);
  return res.text();
}

/** promtool's verdict on an exposition: exit code and every problem it lists. */
async function lint(text: string): Promise<{ code: number; problems: string }> {
  const r = await promtool(['check', 'metrics'], text);
  return { code: r.code, problems: (r.stdout + r.stderr).trim() };
}

describe('the sidecar /metrics', () => {
  let vendor: ScriptedUpstream;
  let sidecar: SidecarProcess;
  let dir: string;

  beforeAll(async () => {
    vendor = await startUpstream();
    dir = mkdtempSync(join(tmpdir(), 'breakwater-promtool-'));
    const doc = (name: string, spec: Record<string, unknown>) =>
      stringify({ apiVersion: 'breakwater.dev/v1alpha1', kind: 'ExternalIntegration', metadata: { name }, spec });
    writeFileSync(
      join(dir, 'integrations.yaml'),
      [
        doc('payments', {
          upstream: { url: vendor.url },
          retry: { maxAttempts: 3, backoff: { initial: '1ms', max: '1ms' }, budget: { percent: 0, minPerSecond: 1 } },
          circuitBreaker: { consecutiveFailures: 3, halfOpenAfter: '1m' },
          rateLimit: { requests: 1000, per: '1s', whenExceeded: 'reject' },
          bulkhead: { maxConcurrent: 4 },
          fallback: { status: 200, body: 'cached' },
        }),
        doc('limited', { upstream: { url: vendor.url }, rateLimit: { requests: 1, per: '1m', whenExceeded: 'reject' } }),
        doc('shadow', { upstream: { url: vendor.url }, mode: 'observe', rateLimit: { requests: 1, per: '1m', whenExceeded: 'reject' } }),
      ].join('---\n'),
    );
    sidecar = await spawnSidecar(['--config', join(dir, 'integrations.yaml'), '--port', '0', '--admin-port', '0', '--secrets-dir', dir]);
  });
  afterAll(async () => {
    sidecar?.child.kill('SIGTERM');
    await sidecar?.exited;
    await vendor?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('passes promtool check metrics after every kind of call', async () => {
    const call = async (path: string) => (await fetch(`http://127.0.0.1:${sidecar.port}${path}`)).status;
    vendor.script({ status: 503 }, { status: 200 });
    expect(await call('/payments/retried')).toBe(200);
    vendor.otherwise({ status: 503 });
    // Three failures open the breaker; the fallback answers from then on.
    for (let i = 0; i < 4; i++) await call('/payments/down');
    expect(await call('/limited/a')).toBe(503);
    expect(await call('/limited/b')).toBe(429);
    // Observed, not refused: the vendor's 503 comes back.
    expect(await call('/shadow/a')).toBe(503);
    expect(await call('/shadow/b')).toBe(503);
    expect(await call('/nowhere/x')).toBe(404);

    const text = await scrape(sidecar.adminPort);
    for (const series of [
      'breakwater_requests_total{',
      'breakwater_retries_total{',
      'breakwater_fallbacks_total{',
      'breakwater_circuit_state{integration="payments"} 2',
      'breakwater_rate_limited_total{',
      'breakwater_observed_decisions_total{integration="shadow",decision="rate_limited"} 1',
      'breakwater_unknown_integration_total 1',
      'breakwater_config_reloads_total{result="success"} 1',
    ]) {
      expect(text).toContain(series);
    }
    expect(await lint(text)).toEqual({ code: 0, problems: '' });
  });
});

describe('the operator /metrics', () => {
  let cp: ControlPlane;
  let operator: OperatorProcess;

  beforeAll(async () => {
    cp = await ControlPlane.start({ binDir: inject('k8sBinDir'), tier: 1 });
    const kubectl = kubectlFor(cp.binDir, cp.kubeconfigPath);
    await installCrd(kubectl);
    await ok(kubectl, ['create', 'namespace', 'breakwater-system']);
    await ok(kubectl, ['create', 'namespace', 'shop']);
    operator = await startOperator({ kubeconfig: cp.kubeconfigPath, namespace: 'breakwater-system' });
    await ok(kubectl, ['apply', '-n', 'shop', '-f', '-'], JSON.stringify({
      apiVersion: 'breakwater.dev/v1alpha1',
      kind: 'ExternalIntegration',
      metadata: { name: 'stripe' },
      spec: { upstream: { url: 'https://api.stripe.example' } },
    }));
    await eventually('a reconcile of namespace shop', async () => {
      const n = await operator.metric('breakwater_operator_reconcile_total', { result: 'success' });
      return { done: n > 0 ? n : undefined, seen: n };
    });
    // One admission, so the webhook's series are there too.
    await eventually('a pod admitted by the webhook', async () => {
      await kubectl(['delete', 'pod', 'app', '-n', 'shop', '--ignore-not-found', '--wait=false']);
      await ok(kubectl, ['create', '-n', 'shop', '-f', '-'], JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'app', annotations: { 'breakwater.dev/inject': 'true' } },
        spec: { containers: [{ name: 'app', image: 'registry.example/app:1' }] },
      }));
      const n = await operator.metric('breakwater_webhook_admissions_total', { result: 'injected' });
      return { done: n > 0 ? n : undefined, seen: n };
    });
  });
  afterAll(async () => {
    await operator?.stop();
    await cp?.stop();
  });

  it('passes promtool check metrics', async () => {
    const text = await scrape(operator.adminPort);
    expect(text).toContain('breakwater_operator_reconcile_total{result="success"}');
    expect(text).toContain('breakwater_webhook_admissions_total{result="injected"');
    expect(await lint(text)).toEqual({ code: 0, problems: '' });
  });
});
