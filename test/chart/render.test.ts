// The chart as helm renders it: lint and template clean for the defaults and every value combination
// in charts/breakwater/ci/, the rendered objects carry the names, ports and flags the programs use
// (src/api/names.ts), and values.schema.json turns a bad value into an error naming it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { V1Container, V1Deployment, V1MutatingWebhookConfiguration, V1SecurityContext, V1Service } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { beforeAll, describe, expect, inject as provided, it } from 'vitest';
import {
  ANNOTATION_INJECT,
  HEALTH_PATH,
  METRICS_PATH,
  OPERATOR_ADMIN_PORT,
  PROXY_PORT,
  READY_PATH,
  SIDECAR_ADMIN_PORT_NAME,
  WEBHOOK_CERT_SECRET_NAME,
  WEBHOOK_CONFIGURATION_NAME,
  WEBHOOK_NAME,
  WEBHOOK_PATH,
  WEBHOOK_PORT,
  WEBHOOK_SERVICE_NAME,
} from '../../src/api/names.ts';
import { ALWAYS_EXCLUDED_NAMESPACES } from '../../src/kube/webhook-configuration.ts';
import { inject as injectPod, SIDECAR_MODES, SIDECAR_RESOURCES } from '../../src/operator/inject.ts';
import { LOG_LEVELS } from '../../src/runtime/logger.ts';
import { CHART_DIR, helmFor, only, parseManifests, VALUE_COMBINATIONS, type K8sObject } from '../support/helm.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const helm = helmFor(provided('k8sBinDir'));
const NS = 'breakwater-system';

async function template(...args: string[]): Promise<K8sObject[]> {
  const r = await helm(['template', 'breakwater', CHART_DIR, '--namespace', NS, ...args]);
  if (r.code !== 0) throw new Error(`helm template ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return parseManifests(r.stdout);
}

function operatorContainer(objects: readonly K8sObject[]): V1Container {
  const deployment = only<V1Deployment>(objects, 'Deployment');
  const container = deployment.spec?.template.spec?.containers.find((c) => c.name === 'operator');
  if (!container) throw new Error('the Deployment has no operator container');
  return container;
}

function flag(container: V1Container, name: string): string | undefined {
  const prefix = `--${name}=`;
  return container.args?.find((a) => a.startsWith(prefix))?.slice(prefix.length);
}

function port(container: V1Container, name: string): number | undefined {
  return container.ports?.find((p) => p.name === name)?.containerPort;
}

describe('helm lint and helm template', () => {
  for (const combo of VALUE_COMBINATIONS) {
    it(`are clean with ${combo.name} values`, async () => {
      const lint = await helm(['lint', '--strict', CHART_DIR, '--namespace', NS, ...combo.args]);
      expect(lint.stderr + lint.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
      expect(lint.stdout).not.toMatch(/\[(WARNING|ERROR)\]/);
      expect(lint.code).toBe(0);

      const objects = await template(...combo.args);
      expect(objects.map((o) => o.kind)).toEqual(expect.arrayContaining(['Deployment', 'MutatingWebhookConfiguration', 'ServiceAccount']));
      for (const o of objects) {
        expect(o.metadata.name, `${o.kind} has a name`).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
      }
    });
  }
});

describe('default values', () => {
  let objects: K8sObject[];
  beforeAll(async () => {
    objects = await template();
  });

  it('renders the operator Deployment with two spread replicas, probes and the flags docs/design.md lists', () => {
    const deployment = only<V1Deployment>(objects, 'Deployment');
    expect(deployment.spec?.replicas).toBe(2);
    const spec = deployment.spec?.template.spec;
    const antiAffinity = spec?.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution?.[0];
    expect(antiAffinity?.podAffinityTerm.topologyKey).toBe('kubernetes.io/hostname');
    expect(antiAffinity?.podAffinityTerm.labelSelector?.matchLabels).toEqual(deployment.spec?.selector.matchLabels);

    const c = operatorContainer(objects);
    expect(c.args?.[0]).toBe('operator');
    expect(flag(c, 'namespace')).toBe(NS);
    expect(flag(c, 'admin-port')).toBe(String(OPERATOR_ADMIN_PORT));
    expect(flag(c, 'webhook-port')).toBe(String(WEBHOOK_PORT));
    expect(c.args).toContain('--leader-elect');
    expect(flag(c, 'log-level')).toBe('info');
    expect(flag(c, 'sidecar-image')).toBe(c.image);
    expect(port(c, 'admin')).toBe(OPERATOR_ADMIN_PORT);
    expect(port(c, 'webhook')).toBe(WEBHOOK_PORT);
    expect(c.livenessProbe?.httpGet).toEqual({ path: HEALTH_PATH, port: 'admin' });
    expect(c.readinessProbe?.httpGet).toEqual({ path: READY_PATH, port: 'admin' });
    expect(c.resources?.requests).toBeDefined();
    expect(c.resources?.limits?.memory).toBeDefined();
    // The chart's defaults for the injected sidecar are the operator's own.
    expect(flag(c, 'sidecar-cpu')).toBe(SIDECAR_RESOURCES.cpu);
    expect(flag(c, 'sidecar-memory')).toBe(SIDECAR_RESOURCES.memory);
    expect(flag(c, 'sidecar-memory-limit')).toBe(SIDECAR_RESOURCES.memoryLimit);
  });

  it('runs the operator at least as locked down as the sidecar it injects', () => {
    const sidecar = injectPod({
      pod: { metadata: { name: 'p', annotations: { [ANNOTATION_INJECT]: 'true' } }, spec: { containers: [{ name: 'app' }] } },
      namespace: undefined,
      integrations: [],
      settings: { image: 'x', mode: 'container', serverVersion: { major: 1, minor: 35 }, ...SIDECAR_RESOURCES, logLevel: 'info', version: '0' },
    }).pod.spec?.containers.find((c) => c.name !== 'app');
    const wanted = sidecar?.securityContext as V1SecurityContext;
    expect(wanted.readOnlyRootFilesystem).toBe(true);
    expect(operatorContainer(objects).securityContext).toEqual(wanted);
    const pod = only<V1Deployment>(objects, 'Deployment').spec?.template.spec;
    expect(pod?.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: wanted.runAsUser, seccompProfile: { type: 'RuntimeDefault' } });
    expect(operatorContainer(objects).volumeMounts?.map((m) => m.mountPath)).toEqual(['/tmp']);
  });

  it('protects the replicas with a PodDisruptionBudget on the same selector', () => {
    const pdb = only<{ spec: { minAvailable: number; selector: unknown } }>(objects, 'PodDisruptionBudget');
    expect(pdb.spec.minAvailable).toBe(1);
    expect(pdb.spec.selector).toEqual(only<V1Deployment>(objects, 'Deployment').spec?.selector);
  });

  it('keeps kube-system out of the webhook whatever webhook.excludeNamespaces lists, as the operator does', async () => {
    const objects = await template('--set', 'webhook.excludeNamespaces={team-a}');
    const hook = only<V1MutatingWebhookConfiguration>(objects, 'MutatingWebhookConfiguration').webhooks?.[0];
    expect(hook?.namespaceSelector?.matchExpressions?.[0]?.values).toEqual([...ALWAYS_EXCLUDED_NAMESPACES, 'team-a', NS]);
  });

  it('registers the webhook under the names the operator uses, failing open, quickly, for pods outside kube-system and its own namespace', () => {
    const mwc = only<V1MutatingWebhookConfiguration>(objects, 'MutatingWebhookConfiguration');
    expect(mwc.metadata?.name).toBe(WEBHOOK_CONFIGURATION_NAME);
    expect(mwc.webhooks).toHaveLength(1);
    const hook = mwc.webhooks?.[0];
    expect(hook?.name).toBe(WEBHOOK_NAME);
    expect(hook?.clientConfig.service).toEqual({ name: WEBHOOK_SERVICE_NAME, namespace: NS, path: WEBHOOK_PATH, port: 443 });
    expect(hook?.clientConfig.caBundle).toBeUndefined();
    expect(hook?.failurePolicy).toBe('Ignore');
    expect(hook?.timeoutSeconds).toBeLessThanOrEqual(5);
    expect(hook?.sideEffects).toBe('None');
    expect(hook?.admissionReviewVersions).toEqual(['v1']);
    expect(hook?.reinvocationPolicy).toBe('IfNeeded');
    expect(hook?.rules).toEqual([{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }]);
    expect(hook?.objectSelector).toBeUndefined();
    expect(hook?.namespaceSelector).toEqual({
      matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', NS] }],
    });

    const service = only<V1Service>(objects, 'Service', WEBHOOK_SERVICE_NAME);
    expect(service.spec?.ports).toEqual([{ name: 'webhook', port: 443, targetPort: 'webhook', protocol: 'TCP' }]);
    expect(service.spec?.selector).toEqual(only<V1Deployment>(objects, 'Deployment').spec?.selector.matchLabels);
  });

  it('leaves cert-manager and monitoring objects out', () => {
    const kinds = new Set(objects.map((o) => o.kind));
    for (const kind of ['Certificate', 'Issuer', 'ServiceMonitor', 'PodMonitor', 'PrometheusRule']) expect(kinds.has(kind)).toBe(false);
    expect(objects.filter((o) => o.kind === 'ConfigMap')).toEqual([]);
  });

  it('releases the image the package.json version names', () => {
    const chart = parse(readFileSync(join(CHART_DIR, 'Chart.yaml'), 'utf8')) as { version: string; appVersion: string };
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    expect(chart.appVersion).toBe(pkg.version);
    expect(chart.version).toBe(pkg.version);
    expect(operatorContainer(objects).image).toMatch(new RegExp(`:${pkg.version.replaceAll('.', '\\.')}$`));
  });

  it("tells the user the next two commands in NOTES.txt, with the product's names", () => {
    const notes = readFileSync(join(CHART_DIR, 'templates', 'NOTES.txt'), 'utf8');
    expect(notes).toContain('kubectl apply -n');
    expect(notes).toContain(`"${ANNOTATION_INJECT}":"true"`);
    expect(notes).toContain(`http://127.0.0.1:${PROXY_PORT}/`);
  });
});

describe('value combinations', () => {
  it('cert-manager: a CA issuer, a serving Certificate in the Secret the operator reads, CA injection into the webhook', async () => {
    const objects = await template('--values', join(CHART_DIR, 'ci', 'cert-manager-values.yaml'));
    const mwc = only<V1MutatingWebhookConfiguration>(objects, 'MutatingWebhookConfiguration');
    const from = mwc.metadata?.annotations?.['cert-manager.io/inject-ca-from'];
    const [ns, certName] = from?.split('/') ?? [];
    expect(ns).toBe(NS);
    const cert = only<{ spec: { secretName: string; dnsNames: string[]; issuerRef: { name: string; kind: string } } }>(objects, 'Certificate', certName);
    expect(cert.spec.secretName).toBe(WEBHOOK_CERT_SECRET_NAME);
    expect(cert.spec.dnsNames).toContain(`${WEBHOOK_SERVICE_NAME}.${NS}.svc`);
    const ca = only<{ spec: { ca: { secretName: string } } }>(objects, 'Issuer', cert.spec.issuerRef.name);
    const caCert = only<{ spec: { isCA: boolean; secretName: string } }>(objects, 'Certificate', `${certName?.replace(/-webhook$/, '')}-ca`);
    expect(caCert.spec.isCA).toBe(true);
    expect(ca.spec.ca.secretName).toBe(caCert.spec.secretName);

    const deployment = only<V1Deployment>(objects, 'Deployment');
    const volume = deployment.spec?.template.spec?.volumes?.find((v) => v.secret?.secretName === WEBHOOK_CERT_SECRET_NAME);
    const mount = operatorContainer(objects).volumeMounts?.find((m) => m.name === volume?.name);
    expect(mount?.readOnly).toBe(true);
    expect(operatorContainer(objects).args).toContain(`--webhook-cert-dir=${mount?.mountPath}`);
  });

  it("cert-manager with the cluster's issuer: no issuers of our own", async () => {
    const objects = await template('--values', join(CHART_DIR, 'ci', 'cert-manager-issuer-values.yaml'));
    expect(objects.filter((o) => o.kind === 'Issuer')).toEqual([]);
    const cert = only<{ spec: { issuerRef: unknown } }>(objects, 'Certificate');
    expect(cert.spec.issuerRef).toEqual({ name: 'corp-ca', kind: 'ClusterIssuer' });
  });

  it('monitoring: scrapes the operator and every sidecar, alerts on the breaker, errors, rate limits and the webhook, ships a dashboard', async () => {
    const objects = await template('--values', join(CHART_DIR, 'ci', 'monitoring-values.yaml'));
    const sm = only<{ metadata: { labels: Record<string, string> }; spec: { endpoints: { port: string; path: string }[]; selector: { matchLabels: unknown } } }>(
      objects,
      'ServiceMonitor',
    );
    expect(sm.metadata.labels.release).toBe('prometheus');
    const metricsService = objects.filter((o): o is K8sObject & V1Service => o.kind === 'Service').find((s) => s.spec?.ports?.some((p) => p.name === sm.spec.endpoints[0]?.port));
    expect(metricsService?.spec?.ports?.[0]?.port).toBe(OPERATOR_ADMIN_PORT);
    expect(sm.spec.endpoints[0]?.path).toBe(METRICS_PATH);

    const pm = only<{ spec: { podMetricsEndpoints: { port: string; path: string }[]; namespaceSelector: unknown } }>(objects, 'PodMonitor');
    expect(pm.spec.podMetricsEndpoints).toEqual([expect.objectContaining({ port: SIDECAR_ADMIN_PORT_NAME, path: METRICS_PATH })]);
    expect(pm.spec.namespaceSelector).toEqual({ any: true });

    const rule = only<{ spec: { groups: { rules: { alert: string; expr: string; for?: string }[] }[] } }>(objects, 'PrometheusRule');
    const alerts = Object.fromEntries(rule.spec.groups.flatMap((g) => g.rules).map((r) => [r.alert, r]));
    expect(alerts.BreakwaterCircuitOpen?.expr).toMatch(/breakwater_circuit_state\b.*== 2/);
    expect(alerts.BreakwaterCircuitOpen?.for).toBe('10m');
    // What each alert means is proven by promtool (test/promtool/alerts.test.ts); here, only its shape.
    expect(alerts.BreakwaterErrorRatioHigh?.expr).toContain('breakwater_requests_total{code_class="5xx"}');
    expect(alerts.BreakwaterRateLimitedRatioHigh?.expr).toContain('breakwater_rate_limited_total');
    expect(alerts.BreakwaterWebhookFailing?.expr).toContain(`name="${WEBHOOK_NAME}"`);
    expect(alerts.BreakwaterDeadLetters?.expr).toBe('max by (namespace, integration) (breakwater_dead_letters) > 0');
    expect(alerts.BreakwaterDeliveryBacklogOld?.expr).toBe('max by (namespace, integration) (breakwater_delivery_oldest_seconds) > 1800');
    for (const r of Object.values(alerts)) expect(r.expr.split('(').length, `${r.alert}: balanced parentheses`).toBe(r.expr.split(')').length);

    const dashboard = only<{ data: Record<string, string>; metadata: { labels: Record<string, string> } }>(objects, 'ConfigMap');
    expect(dashboard.metadata.labels.grafana_dashboard).toBe('1');
    const json = JSON.parse(dashboard.data['breakwater.json'] ?? '') as { panels: { targets: { expr: string }[] }[] };
    const exprs = json.panels.flatMap((p) => p.targets.map((t) => t.expr));
    expect(exprs.length).toBeGreaterThan(5);
    for (const e of exprs) expect(e).toMatch(/\bbreakwater_[a-z_]+/);
  });

  it('webhook.url: registers the webhook by that URL, for an operator run outside the cluster, and no Service target', async () => {
    const objects = await template('--set', 'webhook.url=https://10.1.2.3:9443/mutate-pods');
    const clientConfig = only<V1MutatingWebhookConfiguration>(objects, 'MutatingWebhookConfiguration').webhooks?.[0]?.clientConfig;
    expect(clientConfig).toEqual({ url: 'https://10.1.2.3:9443/mutate-pods' });
  });

  it('delivery on a shared Redis: the operator is told the URL and the password Secret, never the password', async () => {
    const c = operatorContainer(await template('--values', join(CHART_DIR, 'ci', 'delivery-redis-values.yaml')));
    expect(flag(c, 'delivery-store')).toBe('redis://redis.infra.svc:6379/2');
    expect(flag(c, 'delivery-store-password-secret')).toBe('breakwater-redis');
    expect(flag(c, 'delivery-store-password-key')).toBe('redis-password');
    expect(flag(operatorContainer(await template()), 'delivery-store')).toBeUndefined();
  });

  it('container sidecar and a strict webhook: flags, image by digest, Fail, no reinvocation, extra excluded namespaces', async () => {
    const objects = await template('--values', join(CHART_DIR, 'ci', 'container-sidecar-values.yaml'));
    const c = operatorContainer(objects);
    expect(flag(c, 'sidecar-mode')).toBe('container');
    expect(flag(c, 'sidecar-image')).toBe('registry.example.com/breakwater-sidecar@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef');
    expect(flag(c, 'sidecar-cpu')).toBe('100m');
    expect(flag(c, 'sidecar-memory')).toBe('192Mi');
    expect(flag(c, 'sidecar-memory-limit')).toBe('384Mi');
    expect(c.image).not.toBe(flag(c, 'sidecar-image'));
    expect(only<V1Deployment>(objects, 'Deployment').spec?.replicas).toBe(3);
    const hook = only<V1MutatingWebhookConfiguration>(objects, 'MutatingWebhookConfiguration').webhooks?.[0];
    expect(hook?.failurePolicy).toBe('Fail');
    expect(hook?.reinvocationPolicy).toBe('Never');
    expect(hook?.timeoutSeconds).toBe(3);
    expect(hook?.namespaceSelector?.matchExpressions?.[0]?.values).toEqual(['kube-system', 'kube-public', 'istio-system', NS]);
  });
});

describe('values.schema.json', () => {
  const schema = JSON.parse(readFileSync(join(CHART_DIR, 'values.schema.json'), 'utf8')) as {
    properties: { sidecar: { properties: { mode: { enum: string[] } } } };
    definitions: { logLevel: { enum: string[] } };
  };

  it('allows exactly the sidecar modes and log levels the programs accept', () => {
    expect(schema.properties.sidecar.properties.mode.enum).toEqual([...SIDECAR_MODES]);
    expect(schema.definitions.logLevel.enum).toEqual([...LOG_LEVELS]);
  });

  const bad: [string, string[], RegExp][] = [
    ['an unknown sidecar mode', ['--set', 'sidecar.mode=sometimes'], /at '\/sidecar\/mode': value must be one of 'auto', 'native', 'container'/],
    ['an unknown failure policy', ['--set', 'webhook.failurePolicy=Sometimes'], /at '\/webhook\/failurePolicy': value must be one of 'Ignore', 'Fail'/],
    ['a webhook timeout over 30s', ['--set', 'webhook.timeoutSeconds=60'], /at '\/webhook\/timeoutSeconds': maximum: got 60, want 30/],
    ['a misspelt key', ['--set', 'operator.replica=3'], /at '\/operator': additional properties 'replica' not allowed/],
    ['a memory that is not a quantity', ['--set', 'sidecar.resources.memory=lots'], /at '\/sidecar\/resources\/memory': 'lots' does not match pattern/],
    ['a log level pino does not know', ['--set', 'operator.logLevel=verbose'], /at '\/operator\/logLevel': value must be one of 'trace'/],
    ['zero replicas', ['--set', 'operator.replicas=0'], /at '\/operator\/replicas': minimum: got 0, want 1/],
  ];
  for (const [what, args, message] of bad) {
    it(`rejects ${what} before anything renders`, async () => {
      const r = await helm(['template', 'breakwater', CHART_DIR, '--namespace', NS, ...args]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain("values don't meet the specifications of the schema");
      expect(r.stderr).toMatch(message);
      expect(r.stdout).toBe('');
    });
  }
});
