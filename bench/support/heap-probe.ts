// Preloaded into a process under measurement (`node --import heap-probe.js`) by bench/allocations.ts.
// SIGUSR2 opens a window and the next one closes it; each appends one JSON line to `<pid>.jsonl` in the
// directory BENCH_HEAP_PROBE_DIR names, so the benchmark knows the window is open before it sends a
// call, and reads the figures once it is closed. The bytes are those V8's heap took during the window: per collection, the
// heap's use before it less the use after the one before (V8's GCProfiler reports both), plus what
// was taken since the last. They do not move with the load of the machine, unlike time, and are what
// fills the young generation. With BENCH_HEAP_PROFILE=1, each window also runs the sampling heap
// profiler, keeping the objects collections freed, and writes `<pid>.<n>.heapprofile` beside it.
import { appendFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { GCProfiler, getHeapStatistics } from 'node:v8';

const dir = process.env.BENCH_HEAP_PROBE_DIR ?? '';
if (dir === '') throw new Error('heap-probe: BENCH_HEAP_PROBE_DIR names no directory');
const out = join(dir, `${process.pid}.jsonl`);
const profiling = process.env.BENCH_HEAP_PROFILE === '1';

/** Every allocation in 1 KiB is sampled: per-call objects are a few hundred bytes each. */
const SAMPLING_INTERVAL = 1024;

export interface WindowFigures {
  readonly allocatedBytes: number;
  /** Collections in the window by V8's name for them (Scavenge, MarkSweepCompact, …). */
  readonly collections: Record<string, number>;
}

let window: { readonly profiler: GCProfiler; readonly usedAtStart: number; readonly session: Session | undefined } | undefined;
let windows = 0;
let busy = false;

async function open(): Promise<void> {
  const session = profiling ? new Session() : undefined;
  if (session) {
    session.connect();
    await session.post('HeapProfiler.startSampling', { samplingInterval: SAMPLING_INTERVAL, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  }
  const profiler = new GCProfiler();
  profiler.start();
  window = { profiler, usedAtStart: getHeapStatistics().used_heap_size, session };
  appendFileSync(out, '{"open":true}\n');
}

async function close(): Promise<void> {
  const { profiler, usedAtStart, session } = window!;
  window = undefined;
  const usedAtEnd = getHeapStatistics().used_heap_size;
  const { statistics } = profiler.stop();
  let allocatedBytes = 0;
  let usedAfterLast = usedAtStart;
  const collections: Record<string, number> = {};
  for (const gc of statistics) {
    allocatedBytes += gc.beforeGC.heapStatistics.usedHeapSize - usedAfterLast;
    usedAfterLast = gc.afterGC.heapStatistics.usedHeapSize;
    collections[gc.gcType] = (collections[gc.gcType] ?? 0) + 1;
  }
  allocatedBytes += usedAtEnd - usedAfterLast;
  if (session) {
    const { profile } = await session.post('HeapProfiler.stopSampling');
    session.disconnect();
    writeFileSync(join(dir, `${process.pid}.${windows}.heapprofile`), JSON.stringify(profile));
  }
  windows++;
  const figures: WindowFigures = { allocatedBytes, collections };
  appendFileSync(out, `${JSON.stringify(figures)}\n`);
}

process.on('SIGUSR2', () => {
  // The benchmark waits for each line before it signals again; a second signal meanwhile is a bug there.
  if (busy) throw new Error('heap-probe: SIGUSR2 while a window was opening or closing');
  busy = true;
  void (window === undefined ? open() : close()).finally(() => {
    busy = false;
  });
});
