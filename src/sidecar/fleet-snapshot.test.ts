import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { ExternalIntegration } from '../api/schema.ts';
import { createLogger } from '../runtime/logger.ts';
import { fleetShares } from './fleet-snapshot.ts';
import { Integration, integrationKey } from './integration.ts';
import { SidecarMetrics } from './metrics.ts';

function build(name: string, scope: 'pod' | 'fleet' | 'global'): Integration {
  const doc: ExternalIntegration = {
    apiVersion: 'breakwater.dev/v1alpha1',
    kind: 'ExternalIntegration',
    metadata: { name },
    spec: { upstream: { url: 'http://127.0.0.1:9' }, rateLimit: { requests: 10, burst: 10, scope } },
  };
  return new Integration(doc, integrationKey(doc), {
    secretsDir: '/nonexistent',
    secretPollMs: 1000,
    maxConnectionsPerUpstream: 1,
    logger: createLogger({ level: 'silent', name: 'test' }),
    metrics: new SidecarMetrics(new Registry()),
    policy: {},
  });
}

describe('fleetShares', () => {
  it("applies the operator's share to fleet and global limits (the local bucket a global one falls back to), never to pod ones", () => {
    const integrations = new Map(['pod', 'fleet', 'global'].map((scope) => [scope, build(scope, scope as 'pod' | 'fleet' | 'global')]));
    try {
      fleetShares({ names: () => [...integrations.keys()], get: (name) => integrations.get(name) })(new Map([['pod', 0.25], ['fleet', 0.25], ['global', 0.25]]));
      const tokens = Object.fromEntries([...integrations].map(([name, i]) => [name, Math.floor(i.policy.limiter!.available)]));
      expect(tokens).toEqual({ pod: 10, fleet: 2, global: 2 });
    } finally {
      for (const i of integrations.values()) i.retire(true);
    }
  });
});
