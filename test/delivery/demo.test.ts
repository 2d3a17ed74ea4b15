// `make demo`'s durable scene, run as a process: it takes the whole vendor day plus the drain.
import { describe, expect, it } from 'vitest';
import { runDemo } from '../support/demo-process.ts';

describe('breakwater demo --scene durable', () => {
  it('durable scene: every order accepted at once, each delivered once, the refused ones listed as dead letters', async () => {
    const { code, stdout, stderr } = await runDemo(['--scene', 'durable', '--phase-duration', '1s', '--rate', '20']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const [, sent, accepted, refused] = /Summary: (\d+) orders sent, (\d+) accepted \(202\), (\d+) not accepted/.exec(stdout) ?? [];
    expect(Number(sent)).toBeGreaterThan(50);
    expect(accepted).toBe(sent);
    expect(refused).toBe('0');
    // Exactly once per key: every order the vendor processed carried its key, so an attempt sent again
    // (its answer came after the attempt timeout) is recognised by the vendor, not processed twice.
    const [, took, unkeyed, dead] = /the vendor took (\d+) distinct orders, (\d+) without an Idempotency-Key; \d+ repeated attempts carried a key it had processed and were not processed again; (\d+) dead letters/.exec(stdout) ?? [];
    expect(unkeyed).toBe('0');
    expect(Number(took) + Number(dead)).toBe(Number(accepted));
    expect(Number(dead)).toBeGreaterThan(0);
    expect(stdout.match(/dead \(refused\)\s+1\s+\S+\s+the vendor answered 422/g)).toHaveLength(Number(dead));
  }, 60_000);

});
