import { describe, expect, it } from 'vitest';
import { isDateTime } from './formats.ts';

describe('isDateTime', () => {
  it('takes RFC 3339 times as the API server and toISOString write them, with an offset too', () => {
    for (const value of ['2026-12-05T10:00:00Z', '2026-12-05T10:00:00.123Z', '2028-02-29T23:59:59.999999999Z', '2026-12-05T10:00:00+01:00']) expect(isDateTime(value)).toBe(true);
  });

  it('refuses what is no instant', () => {
    for (const value of ['2026-12-05T99Z', '2026-13-05T10:00:00Z', '2026-02-30T10:00:00Z', '2027-02-29T10:00:00Z', '2026-12-05T24:00:00Z', '2026-12-05 10:00:00Z', '2026-12-05T10:00:00', '5']) {
      expect(isDateTime(value)).toBe(false);
    }
  });
});
