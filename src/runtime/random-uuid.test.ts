import { describe, expect, it } from 'vitest';
import { randomUUID } from './random-uuid.ts';

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('randomUUID', () => {
  it('makes version-4 UUIDs, none twice, across many batches of entropy', () => {
    const ids = Array.from({ length: 5000 }, randomUUID);
    for (const id of ids) expect(id).toMatch(V4);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('spreads the random digits over every hex digit, as random bytes would', () => {
    // 2,000 ids of 30 random digits: each of 16 values comes about 3,750 times; a stuck nibble or a
    // half-filled batch would leave some far off.
    const counts = new Map<string, number>();
    for (let n = 0; n < 2000; n++) {
      const digits = randomUUID().replaceAll('-', '');
      for (let i = 0; i < 32; i++) if (i !== 12 && i !== 16) counts.set(digits[i]!, (counts.get(digits[i]!) ?? 0) + 1);
    }
    expect(counts.size).toBe(16);
    for (const count of counts.values()) expect(count).toBeGreaterThan(3000);
  });
});
