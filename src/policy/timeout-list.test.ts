import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TimeoutList } from './timeout-list.ts';

describe('TimeoutList', () => {
  beforeEach(() => vi.useFakeTimers({ now: 0 }));
  afterEach(() => vi.useRealTimers());

  const list = (ms: number) => {
    const expired: string[] = [];
    return { timeouts: new TimeoutList<string>(ms, (owner) => expired.push(`${owner}@${performance.now()}`)), expired };
  };

  it('expires each timeout at its own time, not a millisecond before, in the order they started', async () => {
    const { timeouts, expired } = list(100);
    timeouts.start('a');
    await vi.advanceTimersByTimeAsync(30);
    timeouts.start('b');
    await vi.advanceTimersByTimeAsync(69);
    expect(expired).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(expired).toEqual(['a@100']);
    await vi.advanceTimersByTimeAsync(29);
    expect(expired).toEqual(['a@100']);
    await vi.advanceTimersByTimeAsync(1);
    expect(expired).toEqual(['a@100', 'b@130']);
  });

  it('keeps the timer on the head when an expiry starts another timeout', async () => {
    const expired: string[] = [];
    const timeouts: TimeoutList<string> = new TimeoutList<string>(100, (owner) => {
      expired.push(`${owner}@${performance.now()}`);
      if (owner === 'a') timeouts.start('c');
    });
    timeouts.start('a');
    await vi.advanceTimersByTimeAsync(20);
    timeouts.start('b');
    await vi.advanceTimersByTimeAsync(180);
    expect(expired).toEqual(['a@100', 'b@120', 'c@200']);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('never expires a cleared timeout, wherever it is in the list, and clearing twice or after expiry does nothing', async () => {
    const { timeouts, expired } = list(100);
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((owner) => timeouts.start(owner));
    b!.clear();
    a!.clear();
    d!.clear();
    b!.clear();
    await vi.advanceTimersByTimeAsync(100);
    expect(expired).toEqual(['c@100']);
    c!.clear();
    timeouts.start('e');
    await vi.advanceTimersByTimeAsync(100);
    expect(expired).toEqual(['c@100', 'e@200']);
  });

  it('keeps one timer however many timeouts are pending, and none once they are all gone', async () => {
    const { timeouts, expired } = list(50);
    const started = Array.from({ length: 1000 }, (_, i) => timeouts.start(String(i)));
    expect(vi.getTimerCount()).toBe(1);
    for (const timeout of started.slice(0, 999)) timeout.clear();
    await vi.advanceTimersByTimeAsync(20);
    // A call that ends before its timeout leaves the timer armed until then, not a timer per call.
    timeouts.start('late');
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(30);
    expect(expired).toEqual(['999@50']);
    await vi.advanceTimersByTimeAsync(20);
    expect(expired).toEqual(['999@50', 'late@70']);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('does not keep the process alive while a timeout is pending', () => {
    const module = fileURLToPath(new URL('./timeout-list.ts', import.meta.url));
    const script = `import { TimeoutList } from ${JSON.stringify(module)}; new TimeoutList(60_000, () => console.log('expired')).start('x'); console.log('started');`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(run.signal).toBeNull();
    expect(run.stdout).toBe('started\n');
    expect(run.status).toBe(0);
  });
});
