// CPU time and resident memory of a process under test, read from /proc so that the proxy needs no
// cooperation and nginx (a master and its workers) is measured the same way as a Node process.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** The process and its direct children (nginx workers). */
function family(pid: number): number[] {
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    return [pid, ...(children ? children.split(' ').map(Number) : [])];
  } catch {
    return [pid];
  }
}

/** utime + stime of every thread, in seconds; resolution is one clock tick (usually 10 ms). */
export function cpuSeconds(pid: number): number {
  let ticks = 0;
  for (const p of family(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      // The command name (field 2) may contain spaces, so count fields after its closing parenthesis.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // A worker that exited between listing and reading has nothing left to count.
    }
  }
  return ticks / TICKS_PER_SECOND;
}

function statusBytes(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const pattern = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm');
  let kib = 0;
  for (const p of family(pid)) {
    try {
      const match = pattern.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      kib += match ? Number(match[1]) : 0;
    } catch {
      // As above: the process is gone.
    }
  }
  return kib * 1024;
}

export function rssBytes(pid: number): number {
  return statusBytes(pid, 'VmRSS');
}

/**
 * The kernel's high-water mark of RSS since the process started, which a peak between two samples cannot
 * escape. Over a family it is the sum of each member's own peak, so an upper bound.
 */
export function peakRssBytes(pid: number): number {
  return statusBytes(pid, 'VmHWM');
}

export interface Usage {
  /** CPU seconds the process spent during the window. */
  readonly cpuSeconds: number;
  readonly peakRssBytes: number;
}

/** Samples a process while `work` runs: CPU before and after, RSS every `everyMs` for the peak. */
export async function measureUsage<T>(pid: number | undefined, work: () => Promise<T>, everyMs = 200): Promise<{ result: T; usage?: Usage }> {
  if (pid === undefined) return { result: await work() };
  const cpuBefore = cpuSeconds(pid);
  let peakRssBytes = rssBytes(pid);
  const timer = setInterval(() => {
    peakRssBytes = Math.max(peakRssBytes, rssBytes(pid));
  }, everyMs);
  try {
    const result = await work();
    peakRssBytes = Math.max(peakRssBytes, rssBytes(pid));
    return { result, usage: { cpuSeconds: cpuSeconds(pid) - cpuBefore, peakRssBytes } };
  } finally {
    clearInterval(timer);
  }
}
