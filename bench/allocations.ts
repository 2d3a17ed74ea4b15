// `npm run bench:allocations`: bytes V8's heap allocates per proxied call, and young-generation
// collections per 10,000 calls, side by side with a bare undici passthrough. Like an instruction count
// and unlike time, neither moves with the load of a shared machine. They matter at saturation: with the
// 1 MB semi-spaces every Node target runs with (bench/support/runtime.ts), a proxy that makes twice the
// garbage per call collects its young generation twice as often. Each proxy runs with a probe
// preloaded (bench/support/heap-probe.ts); after a warm-up, windows of a fixed number of calls, 8 at a
// time, are measured, and the median window is the figure. The origin and the configurations are the
// throughput scenario's. `--profile DIR` also writes each target's sampling heap profile of every window
// (collected objects kept: it is garbage that is counted), for Chrome DevTools' Memory tab.
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { compiled } from './support/build.ts';
import { callsAtOnce } from './support/calls.ts';
import { firstLine, inTempDir, startChild } from './support/children.ts';
import type { WindowFigures } from './support/heap-probe.ts';
import { HOST } from './support/net.ts';
import { fmt, table } from './support/report.ts';
import { median } from './support/stats.ts';
import { startNodeProxy, type Target } from './support/target.ts';
import { startBreakwater } from './targets/breakwater.ts';

const { values: args } = parseArgs({
  options: {
    calls: { type: 'string', default: '10000' },
    windows: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '5000' },
    profile: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(`usage: node bench/allocations.ts [--calls 10000] [--windows 3] [--warmup 5000] [--profile DIR]

  --calls is the size of one measured window; the median of the windows is reported.
  --profile DIR writes <target>.<window>.heapprofile files (the sampling heap profiler's, collected
  objects kept) into DIR.

  Targets: undici (the baseline), breakwater-minimal, breakwater-full. Takes about a minute.`);
  process.exit(0);
}
const calls = Number(args.calls);
const windows = Number(args.windows);
const warmup = Number(args.warmup);
const profileDir = args.profile === undefined ? undefined : resolve(args.profile);
const CONCURRENCY = 8;
const PROBE_WAIT_MS = 30_000;

/** The probe's lines so far, once there are `count` of them. */
async function probeLines(file: string, count: number): Promise<string[]> {
  const deadline = Date.now() + PROBE_WAIT_MS;
  for (;;) {
    const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
    if (lines.length >= count) return lines;
    if (Date.now() > deadline) throw new Error(`${file}: the probe wrote ${lines.length} lines, not ${count}`);
    await sleep(10);
  }
}

/** The figures of each measured window of `target`, whose probe writes into `dir`. */
async function measureTarget(target: Target, dir: string): Promise<WindowFigures[]> {
  const child = target.child!;
  const file = join(dir, `${child.pid}.jsonl`);
  await callsAtOnce(target.url, warmup, CONCURRENCY);
  const figures: WindowFigures[] = [];
  for (let w = 0; w < windows; w++) {
    child.process.kill('SIGUSR2');
    await probeLines(file, 2 * w + 1);
    await callsAtOnce(target.url, calls, CONCURRENCY);
    child.process.kill('SIGUSR2');
    figures.push(JSON.parse((await probeLines(file, 2 * w + 2))[2 * w + 1]!) as WindowFigures);
  }
  await child.stop();
  if (profileDir) {
    mkdirSync(profileDir, { recursive: true });
    for (let w = 0; w < windows; w++) copyFileSync(join(dir, `${child.pid}.${w}.heapprofile`), join(profileDir, `${target.name}.${w}.heapprofile`));
  }
  return figures;
}

async function main(): Promise<number> {
  return inTempDir('breakwater-allocations-', measure);
}

async function measure(tmp: string): Promise<number> {
  console.log('Compiling with tsconfig.build.json, as the image does …');
  const locate = compiled(tmp);
  const probeDir = join(tmp, 'probe');
  mkdirSync(probeDir);
  // The children inherit the benchmark's environment (bench/support/runtime.ts): this is how the probe finds its directory.
  process.env.BENCH_HEAP_PROBE_DIR = probeDir;
  if (profileDir) process.env.BENCH_HEAP_PROFILE = '1';
  const probe = ['--import', locate('bench/support/heap-probe.ts')];
  const origin = startChild('origin', process.execPath, [locate('bench/support/origin.ts')]);
  const { port } = JSON.parse(await firstLine(origin)) as { port: number };
  const originUrl = `http://${HOST}:${port}`;

  const results = new Map<string, WindowFigures[]>();
  const undici = await startNodeProxy('undici', locate('bench/targets/undici.ts'), originUrl, '', [], probe);
  results.set('undici', await measureTarget(undici, probeDir));
  for (const profile of ['minimal', 'full'] as const) {
    const target = await startBreakwater({ profile, originUrl, tmp, cli: locate('cmd/breakwater.ts'), nodeFlags: probe });
    results.set(target.name, await measureTarget(target, probeDir));
  }

  const perCall = (w: WindowFigures) => w.allocatedBytes / calls;
  const scavenges = (w: WindowFigures) => ((w.collections.Scavenge ?? 0) * 10_000) / calls;
  const others = (w: WindowFigures) => Object.entries(w.collections).reduce((n, [type, count]) => (type === 'Scavenge' ? n : n + count), 0);
  const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;
  const base = median(results.get('undici')!.map(perCall));
  console.log(`\n${windows} windows of ${calls} calls per target after ${warmup} to warm up, ${CONCURRENCY} at a time\n`);
  console.log(
    table(
      ['target', 'heap bytes per call (median window)', 'range of the windows', 'ratio to undici', 'scavenges per 10,000 calls', 'other collections'],
      [...results].map(([name, figures]) => {
        const bytes = figures.map(perCall).sort((a, b) => a - b);
        return [
          name,
          kb(median(bytes)),
          `${kb(bytes[0]!)}–${kb(bytes.at(-1)!)}`,
          fmt.ratio(median(bytes) / base),
          median(figures.map(scavenges)).toFixed(1),
          String(figures.reduce((n, w) => n + others(w), 0)),
        ];
      }),
    ),
  );
  return 0;
}

process.exitCode = await main();
