import { describe, expect, it } from 'vitest';
import { prefersAsync } from './deliveries.ts';

describe('prefersAsync (RFC 7240)', () => {
  it('finds respond-async alone, among other preferences, with parameters, in any case', () => {
    for (const prefer of ['respond-async', 'Respond-Async', 'respond-async, wait=10', 'handling=lenient, respond-async', ['return=minimal', 'respond-async']]) {
      expect(prefersAsync(prefer)).toBe(true);
    }
  });

  it('ignores other preferences and look-alikes', () => {
    for (const prefer of [undefined, '', 'return=minimal', 'respond-asyncx', 'x-respond-async', 'wait=respond-async']) {
      expect(prefersAsync(prefer)).toBe(false);
    }
  });
});
