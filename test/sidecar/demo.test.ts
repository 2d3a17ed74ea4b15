import { describe, expect, it } from 'vitest';
import { runDemo } from '../support/demo-process.ts';

describe('breakwater demo', () => {
  it('runs every vendor phase and shows the breaker opening and closing, the retries and the fallback', async () => {
    const { code, stdout, stderr } = await runDemo(['--scene', 'calls', '--phase-duration', '1s', '--rate', '20']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    for (const phase of ['healthy', 'slow', 'failing', 'rate-limiting']) expect(stdout).toContain(phase);
    const breaker = /breaker: (.*)$/m.exec(stdout)?.[1] ?? '';
    expect(breaker).toMatch(/open/);
    expect(breaker.split(' → ').at(-1)).toBe('closed');
    expect(Number(/retries made by Breakwater: (\d+)/.exec(stdout)?.[1])).toBeGreaterThan(0);
    const fallback = /of which the fallback\s+-\s+(\d+)%/.exec(stdout)?.[1];
    expect(Number(fallback)).toBeGreaterThan(0);
  }, 30_000);

  it('rejects a bad flag with a usage message', async () => {
    const { code, stderr } = await runDemo(['--phase-duration', 'soon']);
    expect(code).toBe(64);
    expect(stderr).toContain('--phase-duration must be a duration');
  });
});
