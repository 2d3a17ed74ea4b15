// The chart's alerts and dashboard judged by Prometheus' own rule engine: the PrometheusRule rendered
// by helm, the cases in alerts.promtool.yaml (healthy, failing, breaker open, rate-limited, config and
// webhook failures) run by `promtool test rules`.
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CHART_DIR, helmFor, only, parseManifests } from '../support/helm.ts';
import { promtoolAt } from '../support/promtool.ts';

const CASES = fileURLToPath(new URL('./alerts.promtool.yaml', import.meta.url));
const promtool = promtoolAt(inject('promtool'));
const helm = helmFor(inject('k8sBinDir'));

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
}
interface RuleGroups {
  groups: { name: string; rules: Rule[] }[];
}
interface Cases {
  tests: {
    name: string;
    alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[];
    promql_expr_test?: { expr: string }[];
  }[];
}

let dir: string;
let rules: RuleGroups;
let panels: { title: string; targets: { expr: string }[] }[];

beforeAll(async () => {
  const r = await helm(['template', 'breakwater', CHART_DIR, '--namespace', 'breakwater-system', '--set', 'monitoring.prometheusRule.enabled=true', '--set', 'monitoring.grafanaDashboard.enabled=true']);
  if (r.code !== 0) throw new Error(`helm template exited ${r.code}: ${r.stderr}`);
  const objects = parseManifests(r.stdout);
  rules = only<{ spec: RuleGroups }>(objects, 'PrometheusRule').spec;
  const dashboard = only<{ data: Record<string, string> }>(objects, 'ConfigMap');
  panels = (JSON.parse(dashboard.data['breakwater.json'] ?? '{}') as { panels: typeof panels }).panels;
  dir = mkdtempSync(join(tmpdir(), 'breakwater-rules-'));
  writeFileSync(join(dir, 'rules.yaml'), stringify(rules));
  copyFileSync(CASES, join(dir, 'alerts.promtool.yaml'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the PrometheusRule', () => {
  it('passes promtool check rules', async () => {
    const r = await promtool(['check', 'rules', join(dir, 'rules.yaml')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('has a case in which each of its alerts fires, and one in which none does', () => {
    const cases = parse(readFileSync(CASES, 'utf8')) as Cases;
    const alerts = rules.groups.flatMap((g) => g.rules).map((rule) => rule.alert).filter((a) => a !== undefined);
    const firing = new Set(cases.tests.flatMap((t) => (t.alert_rule_test ?? []).filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)));
    expect([...firing].sort()).toEqual([...alerts].sort());
    const quiet = cases.tests.find((t) => (t.alert_rule_test ?? []).every((a) => a.exp_alerts.length === 0));
    expect(new Set(quiet?.alert_rule_test?.map((a) => a.alertname))).toEqual(new Set(alerts));
  });

  it('passes promtool test rules: healthy, failing, breaker open, rate-limited, config and webhook failures', async () => {
    const r = await promtool(['test', 'rules', join(dir, 'alerts.promtool.yaml')]);
    expect(r.stdout + r.stderr).toContain('SUCCESS');
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });
});

describe('the Grafana dashboard', () => {
  // Grafana's variables, as a query over every namespace and integration would set them.
  const asPromQL = (expr: string) =>
    expr.replaceAll('$namespace', '.*').replaceAll('$integration', '.*').replaceAll('$__rate_interval', '5m');

  it('has panel queries that Prometheus parses', async () => {
    const exprs = panels.flatMap((p) => p.targets.map((t) => asPromQL(t.expr)));
    expect(exprs.length).toBeGreaterThan(5);
    // promtool parses expressions in rule files only: each query becomes a recording rule.
    const file = join(dir, 'dashboard-rules.yaml');
    writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules: exprs.map((expr, i) => ({ record: `dashboard:query_${i}`, expr })) }] }));
    const r = await promtool(['check', 'rules', file]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  it('computes the error ratio the promtool case checks', () => {
    const panel = panels.find((p) => p.title === 'Error ratio');
    const cases = parse(readFileSync(CASES, 'utf8')) as Cases;
    const checked = cases.tests.flatMap((t) => t.promql_expr_test ?? []).map((e) => e.expr);
    expect(checked).toContain(asPromQL(panel!.targets[0]!.expr));
  });
});
