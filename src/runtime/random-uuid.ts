// Random version-4 UUIDs, as node:crypto's randomUUID() makes them and from the same kind of entropy:
// random bytes filled in batches, 16 per id. node:crypto builds each id's string from about twenty
// pieces, 0.6 KB of garbage per id, and the sidecar makes one for every call that comes without an
// x-request-id; here the 36 characters are written into a scratch buffer and read out as one string.
import { randomFillSync } from 'node:crypto';

/** Ids per batch of entropy, as node:crypto's cache holds. */
const BATCH = 128;
const HEX = Buffer.from('0123456789abcdef', 'latin1');

const entropy = Buffer.allocUnsafeSlow(16 * BATCH);
let used = BATCH;
const scratch = Buffer.allocUnsafeSlow(36);

export function randomUUID(): string {
  if (used === BATCH) {
    randomFillSync(entropy);
    used = 0;
  }
  const from = used++ * 16;
  let at = 0;
  for (let i = 0; i < 16; i++) {
    let byte = entropy[from + i]!;
    // RFC 9562: the version (4) in the high nibble of byte 6, the variant (10) in the top bits of byte 8.
    if (i === 6) byte = (byte & 0x0f) | 0x40;
    else if (i === 8) byte = (byte & 0x3f) | 0x80;
    scratch[at++] = HEX[byte >> 4]!;
    scratch[at++] = HEX[byte & 0x0f]!;
    if (i === 3 || i === 5 || i === 7 || i === 9) scratch[at++] = 0x2d; // -
  }
  return scratch.toString('latin1', 0, 36);
}
