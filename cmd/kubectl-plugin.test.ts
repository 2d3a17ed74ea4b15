import { describe, expect, it } from 'vitest';
import { kubectlFlags } from './kubectl-plugin.ts';

describe('kubectlFlags', () => {
  const short = { '-n': '--namespace', '-o': '--output', '-A': '--all-namespaces' };

  it("spells kubectl's short flags as ours, with the value apart, attached or after =", () => {
    expect(kubectlFlags(['-n', 'payments', '-ojson', '-A', '-n=shop'], short)).toEqual(['--namespace', 'payments', '--output=json', '--all-namespaces', '--namespace=shop']);
  });

  it('leaves long flags, names and unknown short flags for the parser to judge', () => {
    expect(kubectlFlags(['--off', 'stripe', '-x', '-zvalue'], short)).toEqual(['--off', 'stripe', '-x', '-zvalue']);
  });
});
