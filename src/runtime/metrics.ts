// One prom-client registry per process, so tests can run several components side by side without
// their metrics colliding in the global registry.
import { collectDefaultMetrics, Registry } from 'prom-client';

export const METRIC_PREFIX = 'breakwater_';

/**
 * prom-client's gauges of the totals of its per-type series (`nodejs_active_handles{type}`, …). A gauge
 * named `_total` reads as a counter, which `promtool check metrics` rejects and rate() would misuse;
 * `sum()` of the per-type series gives the same number.
 */
const MISNAMED_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  for (const name of MISNAMED_DEFAULTS) registry.removeSingleMetric(`${METRIC_PREFIX}${name}`);
  return registry;
}
