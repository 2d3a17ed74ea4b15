// One prom-client registry per process, so tests can run several components side by side without
// their metrics colliding in the global registry.
import { collectDefaultMetrics, Registry } from 'prom-client';

export const METRIC_PREFIX = 'breakwater_';

export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  return registry;
}
