// `npm run bench:instructions`: instructions per proxied call, counted by callgrind, side by side with a
// bare undici passthrough. Unlike time and CPU seconds, an instruction count does not move with the
// load of a shared machine, so two versions of the sidecar can be compared across runs. Each proxy runs
// under `valgrind --tool=callgrind` with counting off; after a warm-up (the JIT settles), counting is
// switched on for a fixed number of calls, 8 at a time, then off again, and the count is read from the
// dump; that window is repeated. A window now and then holds a burst of JIT compilation or a full
// garbage collection, which moved a single window's figure by up to 10% from run to run, so the median
// window is the figure and the range is printed beside it. The origin and the configurations are the
// throughput scenario's, but for timeouts a slowed-down sidecar cannot run into. Needs valgrind.
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { compiled } from './support/build.ts';
import { callsAtOnce } from './support/calls.ts';
import { firstLine, inTempDir, startChild } from './support/children.ts';
import { HOST } from './support/net.ts';
import { fmt, table } from './support/report.ts';
import { median } from './support/stats.ts';
import { startNodeProxy, type Target } from './support/target.ts';
import { startBreakwater } from './targets/breakwater.ts';

const { values: args } = parseArgs({
  options: {
    calls: { type: 'string', default: '1000' },
    windows: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '3000' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(`usage: node bench/instructions.ts [--calls 1000] [--windows 5] [--warmup 3000]

  --calls is the size of one counted window; the median of the windows is reported.

  Targets: undici (the baseline), breakwater-minimal, breakwater-full. Takes a few minutes.`);
  process.exit(0);
}
const calls = Number(args.calls);
const windows = Number(args.windows);
const warmup = Number(args.warmup);
const CONCURRENCY = 8;
/**
 * Under callgrind the sidecar runs some fifty times slower, and slower still on a busy machine: with the
 * profiles' own timeouts (1 s to connect, 2 s an attempt in `full`) calls timed out and were retried,
 * counting retries as calls, or answered 502 and 504. The same stack, with timeouts that never fire here.
 */
const SLOW_TIMEOUTS = '{ connect: 1m, perAttempt: 2m, total: 5m }';

function callgrindControl(pid: number, ...flags: string[]): void {
  execFileSync('callgrind_control', [...flags, String(pid)], { stdio: 'ignore' });
}

/** Instructions per call of `target` in each counted window; its process writes its dumps as `<dir>/<prefix>.<pid>*`. */
async function count(target: Target, dir: string, prefix: string): Promise<number[]> {
  const pid = target.child!.pid;
  await callsAtOnce(target.url, warmup, CONCURRENCY);
  const perCall: number[] = [];
  const seen = new Set<string>();
  for (let w = 0; w < windows; w++) {
    callgrindControl(pid, '-i', 'on');
    await callsAtOnce(target.url, calls, CONCURRENCY);
    callgrindControl(pid, '-i', 'off');
    // Dumping zeroes the counters: each dump holds one window.
    callgrindControl(pid, '-d');
    let total = 0;
    for (const file of readdirSync(dir).filter((f) => f.startsWith(`${prefix}.${pid}`) && !seen.has(f))) {
      seen.add(file);
      const totals = /^totals: (\d+)$/m.exec(readFileSync(join(dir, file), 'utf8'));
      if (totals) total += Number(totals[1]);
    }
    if (total === 0) throw new Error(`${target.name}: callgrind counted nothing`);
    perCall.push(total / calls);
  }
  await target.child!.stop();
  return perCall.sort((a, b) => a - b);
}

async function main(): Promise<number> {
  if (spawnSync('valgrind', ['--version']).status !== 0) {
    console.log('skipped: valgrind is not installed');
    return 0;
  }
  return inTempDir('breakwater-instructions-', measure);
}

async function measure(tmp: string): Promise<number> {
  console.log('Compiling with tsconfig.build.json, as the image does …');
  const locate = compiled(tmp);
  const origin = startChild('origin', process.execPath, [locate('bench/support/origin.ts')]);
  const { port } = JSON.parse(await firstLine(origin)) as { port: number };
  const originUrl = `http://${HOST}:${port}`;
  const launcher = (prefix: string) => ['valgrind', '--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${join(tmp, prefix)}.%p`];

  const results = new Map<string, number[]>();
  const undici = await startNodeProxy('undici', locate('bench/targets/undici.ts'), originUrl, '', launcher('undici'));
  results.set('undici', await count(undici, tmp, 'undici'));
  for (const profile of ['minimal', 'full'] as const) {
    const name = `breakwater-${profile}`;
    const target = await startBreakwater({ profile, originUrl, tmp, cli: locate('cmd/breakwater.ts'), launcher: launcher(name), readyTimeoutMs: 300_000, timeouts: SLOW_TIMEOUTS });
    results.set(name, await count(target, tmp, name));
  }

  const k = (n: number) => `${Math.round(n / 1000).toLocaleString('en-US')}k`;
  const base = median(results.get('undici')!);
  console.log(`\n${windows} windows of ${calls} calls per target after ${warmup} to warm up, ${CONCURRENCY} at a time\n`);
  console.log(
    table(
      ['target', 'instructions per call (median window)', 'range of the windows', 'ratio to undici'],
      [...results].map(([name, perCall]) => [name, k(median(perCall)), `${k(perCall[0]!)}–${k(perCall.at(-1)!)}`, fmt.ratio(median(perCall) / base)]),
    ),
  );
  return 0;
}

process.exitCode = await main();
