import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';

function runDemo(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['cmd/breakwater.ts', 'demo', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

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

  it('durable scene: every order accepted at once, each delivered once, the refused ones listed as dead letters', async () => {
    const { code, stdout, stderr } = await runDemo(['--scene', 'durable', '--phase-duration', '1s', '--rate', '20']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const [, sent, accepted, refused] = /Summary: (\d+) orders sent, (\d+) accepted \(202\), (\d+) not accepted/.exec(stdout) ?? [];
    expect(Number(sent)).toBeGreaterThan(50);
    expect(accepted).toBe(sent);
    expect(refused).toBe('0');
    const [, took, twice, dead] = /the vendor took (\d+) distinct orders, (\d+) of them twice; (\d+) dead letters/.exec(stdout) ?? [];
    expect(twice).toBe('0');
    expect(Number(took) + Number(dead)).toBe(Number(accepted));
    expect(Number(dead)).toBeGreaterThan(0);
    expect(stdout.match(/dead \(refused\)\s+1\s+\S+\s+the vendor answered 422/g)).toHaveLength(Number(dead));
  }, 60_000);

  it('rejects a bad flag with a usage message', async () => {
    const { code, stderr } = await runDemo(['--phase-duration', 'soon']);
    expect(code).toBe(64);
    expect(stderr).toContain('--phase-duration must be a duration');
  });
});
