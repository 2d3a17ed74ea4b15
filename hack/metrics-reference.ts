// The metric tables of docs/reference.md, written from the metric definitions themselves: each program's metrics are
// registered into a fresh registry and described from it, so the table cannot list a metric the code
// does not export, or miss one it does.
import { Registry } from 'prom-client';
import { OPERATOR_ADMIN_PORT, SIDECAR_ADMIN_PORT } from '../src/api/names.ts';
import { createOperatorMetrics } from '../src/operator/metrics.ts';
import { fleetReportMetrics } from '../src/operator/fleet-reports.ts';
import { webhookMetrics } from '../src/operator/webhook.ts';
import { METRIC_PREFIX } from '../src/runtime/metrics.ts';
import { SidecarMetrics } from '../src/sidecar/metrics.ts';

interface Described {
  readonly name: string;
  readonly type: string;
  readonly help: string;
  readonly labelNames?: readonly string[];
}

function describe(register: (registry: Registry) => unknown): Described[] {
  const registry = new Registry();
  register(registry);
  return (registry.getMetricsAsArray() as unknown as Described[]).map(({ name, type, help, labelNames }) => ({ name, type, help, labelNames }));
}

function table(title: string, port: string, metrics: Described[]): string[] {
  return [
    `${title}, on ${port} at \`/metrics\`:`,
    '',
    '| Metric | Type | Labels | Meaning |',
    '| --- | --- | --- | --- |',
    ...metrics.map((m) => `| \`${m.name}\` | ${m.type} | ${(m.labelNames ?? []).map((l) => `\`${l}\``).join(', ') || '–'} | ${m.help.replaceAll('|', '\\|')} |`),
    '',
  ];
}

export function metricsMarkdown(): string {
  return [
    ...table('The sidecar', `its admin port (${SIDECAR_ADMIN_PORT})`, describe((r) => new SidecarMetrics(r))),
    ...table('The operator', `its admin port (${OPERATOR_ADMIN_PORT})`, [...describe(createOperatorMetrics), ...describe(webhookMetrics), ...describe(fleetReportMetrics)]),
    'Label values are bounded: no paths, hosts or request ids. Both programs also export the Node.js',
    `process metrics of prom-client with the same \`${METRIC_PREFIX}\` prefix.`,
  ].join('\n');
}
