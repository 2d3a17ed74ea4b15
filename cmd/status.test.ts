import { describe, expect, it } from 'vitest';
import { health, table } from './status.ts';

describe('breakwater status', () => {
  const stored = (name: string, mode?: 'enforce' | 'observe') => ({
    metadata: { name, namespace: 'shop' },
    ...(mode && { spec: { mode } }),
    status: {
      conditions: [{ type: 'Ready', status: 'True' as const }],
      circuit: { open: 1, halfOpen: 0, closed: 1 },
      pods: { reporting: 2, needRestart: 0 },
    },
  });

  it('marks the breaker of an integration in mode observe, which counts and refuses nothing', () => {
    const rows = [health(stored('payments', 'observe'), []), health(stored('geocoder'), [])];
    expect(rows.map((r) => r.mode)).toEqual(['observe', 'enforce']);
    const [, observing, enforcing] = table(rows, false).split('\n');
    expect(observing).toMatch(/^payments +True +- +1\/2 open \(observe\) /);
    expect(enforcing).toMatch(/^geocoder +True +- +1\/2 open +/);
    expect(enforcing).not.toContain('observe');
  });
});
