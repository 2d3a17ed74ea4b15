import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { SidecarMetrics } from './metrics.ts';

describe('IntegrationMetrics', () => {
  it('drops every series of a retired integration, and a call that ends afterwards does not bring one back', async () => {
    const registry = new Registry();
    const metrics = new SidecarMetrics(registry);
    const retired = metrics.forIntegration('retired');
    const kept = metrics.forIntegration('kept');
    for (const m of [retired, kept]) {
      m.attempt('response', 0.01);
      m.request('GET', 200, 'upstream', 0.01);
      m.fallback();
      m.rateLimited();
      m.rateLimitFallback();
    }
    expect(await registry.metrics()).toContain('integration="retired"');

    retired.remove();
    expect(await registry.metrics()).not.toContain('integration="retired"');
    // Calls that were in flight at the reload finish now.
    retired.attempt('response', 0.01);
    retired.request('GET', 200, 'upstream', 0.01);
    retired.fallback();
    retired.rateLimited();
    retired.rateLimitFallback();
    const text = await registry.metrics();
    expect(text).not.toContain('integration="retired"');
    expect(text).toContain('breakwater_requests_total{integration="kept",method="GET",code_class="2xx",outcome="upstream"} 1');
  });
});
