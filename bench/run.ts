// `npm run bench`: every target in front of the same origin, every scenario, side by side in one run,
// because on a small shared machine only ratios taken in the same run mean anything. Prints Markdown
// tables (values, ratios to direct, to bare undici and to http-proxy, goals) and writes the JSON to bench/results/.
//
// Processes: the origin, each proxy and autocannon run in processes of their own; this process runs
// the serial and open-loop generators and reads the proxies' CPU and memory from /proc.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { breakerOpen, type BreakerOpenResult } from './breaker-open.ts';
import { configReload, type ReloadResult } from './config-reload.ts';
import { fixedRateLatency, type FixedRateResult } from './fixed-rate-latency.ts';
import { serialLatency, type SerialResult } from './serial-latency.ts';
import { firstLine, startChild, stopAll, stopAllOnExit } from './support/children.ts';
import { compiled, fromSource, type Locate } from './support/build.ts';
import { runExternal, type ExternalResult } from './support/external.ts';
import { HOST } from './support/net.ts';
import { DIRECT, figureTables, fmt, goalsTable, HTTP_PROXY, NGINX, ratio, UNDICI, type Figure, type Goal } from './support/report.ts';
import { ORIGIN_PATH, startNodeProxy, type Target } from './support/target.ts';
import { FLAKY, startBreakwater, unavailable, type Breakwater } from './targets/breakwater.ts';
import { startDaprd } from './targets/daprd.ts';
import { startNginx } from './targets/nginx.ts';
import { startTraefik } from './targets/traefik.ts';
import { throughput, type ThroughputResult } from './throughput.ts';

const SCENARIOS = ['serial', 'throughput', 'fixed-rate', 'breaker-open', 'config-reload', 'operator'] as const;
type Scenario = (typeof SCENARIOS)[number];
const TARGETS = ['direct', 'http-proxy', 'undici', 'nginx', 'breakwater-minimal', 'breakwater-full', 'daprd', 'daprd-policy', 'traefik', 'traefik-policy'] as const;
/** The peers with a policy equivalent to breakwater-full's, which the goals compare it with. */
const PEERS_WITH_POLICY = ['daprd-policy', 'traefik-policy'] as const;
const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url));
const OPERATOR_SCRIPTS = ['webhook-admission', 'operator-reconcile'] as const;

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    scenarios: { type: 'string', default: SCENARIOS.join(',') },
    targets: { type: 'string', default: TARGETS.join(',') },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    profile: { type: 'string' },
    gomaxprocs: { type: 'string', default: '1' },
    source: { type: 'boolean', default: false },
    out: { type: 'string', default: join(BENCH_DIR, 'results', 'latest.json') },
    help: { type: 'boolean', default: false },
  },
});

if (args.help) {
  console.log(`usage: node bench/run.ts [--quick] [--scenarios ${SCENARIOS.join(',')}]
       [--targets ${TARGETS.join(',')}]
       [--rounds 3] [--seconds 5] [--profile DIR] [--gomaxprocs 1] [--source] [--out FILE]

  --seconds   throughput: seconds per target per round (after a 2 s warm-up)
  --rounds    every measured scenario is split into interleaved rounds, target order rotated each round
  --profile   run the Breakwater sidecars with --cpu-prof, writing .cpuprofile files into DIR
  --gomaxprocs  GOMAXPROCS of the Go peers (daprd, traefik): 1 as one nginx worker or one event loop;
              0 for Go's default, one per core
  --source    run the .ts sources directly instead of compiling them first as the image does
  --quick     short durations, to check that everything runs; the figures are not worth quoting`);
  process.exit(0);
}

const scenarios = new Set(args.scenarios.split(',') as Scenario[]);
const wanted = new Set(args.targets.split(','));
const quick = args.quick;
const rounds = Number(args.rounds);
const goMaxProcs = Number(args.gomaxprocs);
const options = {
  serial: { requests: quick ? 400 : 4000, warmup: quick ? 100 : 500, rounds, maxMsPerRound: 10_000 },
  throughput: { connections: 32, seconds: quick ? 2 : Number(args.seconds), warmupSeconds: quick ? 1 : 2, rounds: quick ? 1 : rounds },
  fixedRate: { rate: 1000, seconds: quick ? 3 : 10, warmupSeconds: quick ? 1 : 2, rounds: quick ? 1 : rounds },
  breakerOpen: { requests: quick ? 500 : 3000, warmup: quick ? 50 : 300, maxMs: 10_000 },
  configReload: { rate: 1000, reloads: 2, gapMs: quick ? 1000 : 2000 },
  operatorTimeoutMs: 300_000,
  goMaxProcs,
};

function section(title: string): void {
  console.log(`\n## ${title}\n`);
}

function log(text: string): void {
  console.log(`- ${text}`);
}

async function startTargets(locate: Locate, tmp: string, originUrl: string, originPort: number): Promise<{ targets: Target[]; skipped: Record<string, string> }> {
  const targets: Target[] = [];
  const skipped: Record<string, string> = {};
  if (wanted.has('direct')) {
    targets.push({ name: DIRECT, description: 'no proxy: the client calls the origin', url: `${originUrl}${ORIGIN_PATH}` });
  }
  if (wanted.has('http-proxy')) {
    targets.push(await startNodeProxy(HTTP_PROXY, locate('bench/targets/http-proxy.ts'), originUrl, 'http-proxy 1.18.1 passthrough, keep-alive http.Agent'));
  }
  if (wanted.has('undici')) {
    targets.push(await startNodeProxy('undici', locate('bench/targets/undici.ts'), originUrl, 'undici Pool + stream() passthrough, hop-by-hop headers dropped'));
  }
  if (wanted.has('nginx')) {
    const nginx = await startNginx(originPort, tmp);
    if (typeof nginx === 'string') skipped.nginx = nginx;
    else targets.push(nginx);
  }
  const profiles = (['minimal', 'full'] as const).filter((p) => wanted.has(`breakwater-${p}`));
  const cli = locate('cmd/breakwater.ts');
  const why = profiles.length ? unavailable(cli) : undefined;
  for (const profile of profiles) {
    if (why) {
      skipped[`breakwater-${profile}`] = why;
      continue;
    }
    const nodeFlags = args.profile ? ['--cpu-prof', `--cpu-prof-dir=${args.profile}`, `--cpu-prof-name=breakwater-${profile}.cpuprofile`] : [];
    targets.push(await startBreakwater({ profile, originUrl, tmp, cli, nodeFlags }));
  }
  const peers = [
    ['daprd', startDaprd],
    ['traefik', startTraefik],
  ] as const;
  for (const [peer, start] of peers) {
    for (const policy of [false, true]) {
      const name = policy ? `${peer}-policy` : peer;
      if (!wanted.has(name)) continue;
      const started = await start({ policy, originUrl, tmp, maxProcs: goMaxProcs });
      if (typeof started === 'string') skipped[name] = started;
      else targets.push(started);
    }
  }
  return { targets, skipped };
}

function machine() {
  let commit: string | undefined;
  try {
    const git = (...argv: string[]) => execFileSync('git', argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    // A run on uncommitted changes says so: the commit alone would not reproduce it.
    commit = git('rev-parse', '--short', 'HEAD') + (git('status', '--porcelain', '--untracked-files=no') ? '-dirty' : '');
  } catch {
    commit = undefined;
  }
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    commit,
  };
}

function buildFigures(
  names: readonly string[],
  serial?: Map<string, SerialResult>,
  load?: Map<string, ThroughputResult>,
  fixed?: Map<string, FixedRateResult>,
  idle?: Map<string, number | undefined>,
): Figure[] {
  const pick = <R>(results: Map<string, R> | undefined, get: (r: R) => number | undefined) =>
    Object.fromEntries(names.map((n) => [n, results?.get(n) === undefined ? undefined : get(results.get(n)!)]));
  const overDirect = (values: Record<string, number | undefined>) =>
    Object.fromEntries(names.map((n) => [n, values[n] === undefined || values[DIRECT] === undefined ? undefined : values[n]! - values[DIRECT]!]));
  const figures: Figure[] = [];
  if (load) {
    figures.push({ key: 'throughputRps', label: 'throughput, 32 connections (req/s)', format: fmt.rps, values: pick(load, (r) => r.requestsPerSecond) });
  }
  if (serial) {
    const p50 = pick(serial, (r) => r.latency.p50);
    const p99 = pick(serial, (r) => r.latency.p99);
    figures.push(
      { key: 'serialP50Ms', label: 'serial latency p50 (ms)', format: fmt.ms, values: p50 },
      { key: 'serialP99Ms', label: 'serial latency p99 (ms)', format: fmt.ms, values: p99 },
      { key: 'serialAddedP50Ms', label: 'serial p50 added over direct (ms)', format: fmt.ms, values: overDirect(p50), overDirect: true },
      { key: 'serialAddedP99Ms', label: 'serial p99 added over direct (ms)', format: fmt.ms, values: overDirect(p99), overDirect: true },
    );
  }
  if (fixed) {
    const p99 = pick(fixed, (r) => r.latency.p99);
    figures.push(
      { key: 'fixedP50Ms', label: '1,000 req/s open loop p50 (ms)', format: fmt.ms, values: pick(fixed, (r) => r.latency.p50) },
      { key: 'fixedP99Ms', label: '1,000 req/s open loop p99 (ms)', format: fmt.ms, values: p99 },
      { key: 'fixedP999Ms', label: '1,000 req/s open loop p99.9 (ms)', format: fmt.ms, values: pick(fixed, (r) => r.latency.p999) },
      { key: 'fixedAddedP99Ms', label: '1,000 req/s p99 added over direct (ms)', format: fmt.ms, values: overDirect(p99), overDirect: true },
      { key: 'cpuPer1kAt1k', label: 'CPU s per 1,000 req at 1,000 req/s', format: fmt.cpu, values: pick(fixed, (r) => r.cpuSecondsPer1k) },
    );
  }
  if (load) {
    figures.push({ key: 'cpuPer1kAt32', label: 'CPU s per 1,000 req at 32 connections', format: fmt.cpu, values: pick(load, (r) => r.cpuSecondsPer1k) });
  }
  if (idle) figures.push({ key: 'rssIdle', label: 'RSS idle (MB)', format: fmt.mb, values: Object.fromEntries(idle) });
  if (fixed) figures.push({ key: 'rssAt1k', label: 'RSS peak at 1,000 req/s (MB)', format: fmt.mb, values: pick(fixed, (r) => r.peakRssBytes) });
  if (load) figures.push({ key: 'rssAt32', label: 'RSS peak at 32 connections (MB)', format: fmt.mb, values: pick(load, (r) => r.peakRssBytes) });
  return figures;
}

/** The goals of the sidecar's hot-path issue: each against bare undici (or nginx) measured in the same run. */
function buildGoals(figures: readonly Figure[], skipped: Record<string, string>, breaker?: BreakerOpenResult, reload?: ReloadResult): Goal[] {
  const get = (key: string, target: string) => figures.find((f) => f.key === key)?.values[target];
  const full = 'breakwater-full';
  const minimal = 'breakwater-minimal';
  const goals: Goal[] = [];
  const missing = (target: string) => (target in skipped ? `${target} missing` : '—');
  /** `target`'s figure over bare undici's, at least `min` (throughput) or at most `max` (cost). */
  const vsUndici = (goal: string, key: string, target: string, bound: { min: number } | { max: number }) => {
    const [ours, base] = [get(key, target), get(key, UNDICI)];
    if (ours === undefined || base === undefined || base === 0) {
      goals.push({ goal, measured: missing(UNDICI), met: undefined });
      return;
    }
    const r = ours / base;
    goals.push({ goal, measured: `${fmt.ratio(r)} undici`, met: 'min' in bound ? r >= bound.min : r <= bound.max });
  };
  /** `target`'s figure at most undici's plus `plus` (in the figure's unit). */
  const overUndici = (goal: string, key: string, plus: number, format: (v: number) => string, unit: string) => {
    const [ours, base] = [get(key, full), get(key, UNDICI)];
    if (ours === undefined || base === undefined) {
      goals.push({ goal, measured: missing(UNDICI), met: undefined });
      return;
    }
    goals.push({ goal, measured: `${format(ours)} vs ${format(base)} ${unit}`, met: ours <= base + plus });
  };
  vsUndici('full-policy throughput ≥ 0.85× bare undici (32 connections)', 'throughputRps', full, { min: 0.85 });
  vsUndici('minimal throughput ≥ 0.95× bare undici (32 connections)', 'throughputRps', minimal, { min: 0.95 });
  vsUndici('CPU per 1,000 req at 32 connections ≤ 1.2× bare undici (full policy)', 'cpuPer1kAt32', full, { max: 1.2 });
  vsUndici('CPU per 1,000 req at 1,000 req/s ≤ 1.1× bare undici (full policy)', 'cpuPer1kAt1k', full, { max: 1.1 });
  overUndici('added serial p50 ≤ bare undici’s + 0.020 ms (full policy)', 'serialAddedP50Ms', 0.02, fmt.ms, 'ms');
  overUndici('p99 at 1,000 req/s ≤ bare undici’s (full policy)', 'fixedP99Ms', 0, fmt.ms, 'ms');
  overUndici('idle RSS ≤ bare undici’s + 10 MB (full policy)', 'rssIdle', 10 * 2 ** 20, fmt.mb, 'MB');
  const rssAt1k = get('rssAt1k', full);
  goals.push({
    goal: 'RSS ≤ 100 MB at 1,000 req/s (full policy)',
    measured: rssAt1k === undefined ? '—' : `${fmt.mb(rssAt1k)} MB`,
    met: rssAt1k === undefined ? undefined : rssAt1k <= 100 * 2 ** 20,
  });
  const nginxP99 = get('serialP99Ms', NGINX);
  goals.push({
    goal: 'breaker-open fail-fast p99 ≤ nginx’s serial p99',
    measured: breaker ? `${fmt.ms(breaker.latency.p99)} ms vs ${nginxP99 === undefined ? missing(NGINX) : `${fmt.ms(nginxP99)} ms`}` : '—',
    met: breaker && nginxP99 !== undefined ? breaker.latency.p99 <= nginxP99 && breaker.unexpected === 0 : undefined,
  });
  goals.push({
    goal: 'config reload under load: 0 failed requests',
    measured: reload ? `${reload.failed} failed of ${reload.scheduled}` : '—',
    met: reload ? reload.failed === 0 && reload.reloads.every((r) => r.appliedMs !== null) : undefined,
  });
  // Lower is better for both; a peer that is not built shows as missing, never as beaten.
  for (const peer of PEERS_WITH_POLICY) {
    for (const [key, what, format] of [
      ['cpuPer1kAt1k', 'CPU per 1,000 req', fmt.cpu],
      ['fixedP99Ms', 'p99', fmt.ms],
    ] as const) {
      const [ours, theirs] = [get(key, full), get(key, peer)];
      const measured = ours !== undefined && theirs !== undefined ? `${format(ours)} vs ${format(theirs)} (${fmt.ratio(ours / theirs)})` : missing(peer);
      goals.push({ goal: `${what} at 1,000 req/s below ${peer}'s (full policy)`, measured, met: ours === undefined || theirs === undefined ? undefined : ours < theirs });
    }
  }
  return goals;
}

async function main(): Promise<number> {
  const tmp = mkdtempSync(join(tmpdir(), 'breakwater-bench-'));
  const removeTmp = () => rmSync(tmp, { recursive: true, force: true });
  stopAllOnExit(removeTmp);
  const startedAt = new Date();
  const load0 = loadavg();
  if (args.profile) mkdirSync(args.profile, { recursive: true });
  try {
    if (!args.source) console.log('Compiling with tsconfig.build.json, as the image does …');
    const locate = args.source ? fromSource : compiled(tmp);
    const origin = startChild('origin', process.execPath, [locate('bench/support/origin.ts')]);
    const { port: originPort } = JSON.parse(await firstLine(origin)) as { port: number };
    const originUrl = `http://${HOST}:${originPort}`;
    const { targets, skipped } = await startTargets(locate, tmp, originUrl, originPort);
    const names = targets.map((t) => t.name);

    section('Targets');
    for (const t of targets) log(`${t.name}: ${t.description}`);
    for (const [name, why] of Object.entries(skipped)) log(`${name}: ${why}`);

    const proxies = targets.filter((t) => t.child);
    const idle = new Map(targets.map((t) => [t.name, t.idleRssBytes]));
    let serial: Map<string, SerialResult> | undefined;
    let load: Map<string, ThroughputResult> | undefined;
    let fixed: Map<string, FixedRateResult> | undefined;
    let breaker: BreakerOpenResult | undefined;
    let reload: ReloadResult | undefined;
    const external: ExternalResult[] = [];
    const full = targets.find((t): t is Breakwater => t.name === 'breakwater-full');

    section('Running');
    if (scenarios.has('serial')) {
      log(`serial latency: ${options.serial.requests} requests per target on 1 connection, ${rounds} interleaved rounds`);
      serial = await serialLatency(targets, options.serial);
    }
    // Before the saturating run: a process keeps the memory that run made it take, so afterwards its
    // RSS would say nothing about 1,000 req/s.
    if (scenarios.has('fixed-rate')) {
      const o = options.fixedRate;
      log(`fixed rate: ${o.rate} req/s open loop, ${o.warmupSeconds} s warm-up, then ${o.rounds} × ${o.seconds / o.rounds} s per target, interleaved`);
      fixed = await fixedRateLatency(targets, o);
    }
    if (scenarios.has('throughput')) {
      const o = options.throughput;
      log(`throughput: autocannon -c ${o.connections}, ${o.warmupSeconds} s warm-up, then ${o.rounds} × ${o.seconds} s per target, interleaved`);
      load = await throughput(targets, o);
    }
    if (scenarios.has('breaker-open') && full) {
      log(`breaker open: trip \`${FLAKY}\`, then ${options.breakerOpen.requests} serial calls`);
      breaker = await breakerOpen(`${full.proxyUrl}/${FLAKY}/charge`, options.breakerOpen);
    }
    if (scenarios.has('config-reload') && full) {
      const o = options.configReload;
      log(`config reload: ${o.reloads} reloads under ${o.rate} req/s open loop, ${o.gapMs} ms apart`);
      reload = await configReload(full, o);
    }
    const endLoad = loadavg();
    // A proxy that died mid-run leaves figures that describe its absence (errors, CPU read from a
    // process that is gone): they are flagged, with the line of its log that says why.
    const died = proxies
      .filter((t) => t.child!.process.exitCode !== null || t.child!.process.signalCode !== null)
      .map((t) => {
        const why = t.child!.stderrTail().split('\n').find((line) => /panic|fatal/i.test(line)) ?? '';
        return `${t.name}: exited during the run (${t.child!.process.exitCode ?? t.child!.process.signalCode}), its later figures are void${why && `: ${why.trim()}`}`;
      });
    await Promise.all(proxies.map((t) => t.child!.stop()));
    await origin.stop();
    if (scenarios.has('operator')) {
      for (const script of OPERATOR_SCRIPTS) {
        log(`${script}: bench/${script}.ts`);
        const result = await runExternal(join(BENCH_DIR, `${script}.ts`), script, options.operatorTimeoutMs);
        if (result.status === 'missing') log(`${script}: skipped: bench/${script}.ts does not exist yet`);
        external.push(result);
      }
    }

    const figures = buildFigures(names, serial, load, fixed, idle);
    const goals = buildGoals(figures, skipped, breaker, reload);
    const tables = figureTables(figures, names);
    section('Results');
    console.log(tables.values);
    section('Ratio to direct');
    console.log(tables.vsDirect);
    section(`Ratio to ${UNDICI}`);
    console.log(tables.vsUndici);
    section(`Ratio to ${HTTP_PROXY}`);
    console.log(tables.vsHttpProxy);
    if (breaker || reload) {
      section('Breakwater only');
      if (breaker) {
        log(`breaker open (\`${FLAKY}\`, opened after ${breaker.callsToOpen} failing calls): circuit_open p50 ${fmt.ms(breaker.latency.p50)} ms, p99 ${fmt.ms(breaker.latency.p99)} ms, p99.9 ${fmt.ms(breaker.latency.p999)} ms over ${breaker.latency.count} calls; ${breaker.unexpected} other answers`);
      }
      if (reload) {
        for (const r of reload.reloads) {
          log(`config ${r.how}: in effect after ${r.appliedMs === null ? 'never (5 s)' : `${r.appliedMs.toFixed(0)} ms`}, counted in /metrics after ${r.countedMs === null ? 'never (5 s)' : `${r.countedMs.toFixed(0)} ms`}`);
        }
        log(`during the reloads: ${reload.failed} failed of ${reload.scheduled} requests at ${options.configReload.rate} req/s (p99 ${fmt.ms(reload.latency.p99)} ms); reloads counted: ${reload.counted.success} success, ${reload.counted.failure} failure`);
      }
    }
    const ran = external.filter((e) => e.status !== 'missing');
    if (ran.length) {
      section('Operator');
      for (const e of ran) {
        console.log(`bench/${e.script}.ts: ${e.status} in ${e.seconds?.toFixed(1)} s\n`);
        console.log(e.summary ? JSON.stringify(e.summary, null, 2) : (e.outputTail ?? '').trimEnd().replace(/^/gm, '    '));
        console.log();
      }
    }
    section('Goals');
    console.log(goalsTable(goals));
    const m = machine();
    section('Machine');
    log(`${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}`);
    log(`load average ${load0.map((l) => l.toFixed(2)).join(' ')} at the start, ${endLoad.map((l) => l.toFixed(2)).join(' ')} at the end (shared machine: other work runs beside the benchmark)`);

    const failures = [...(load?.entries() ?? [])].filter(([, r]) => r.non2xx + r.errors > 0).map(([n, r]) => `${n}: ${r.non2xx} non-2xx, ${r.errors} errors at 32 connections`);
    failures.push(...[...(fixed?.entries() ?? [])].filter(([, r]) => r.failed > 0).map(([n, r]) => `${n}: ${r.failed} failed at 1,000 req/s`));
    failures.push(...[...(serial?.entries() ?? [])].filter(([, r]) => r.non2xx > 0).map(([n, r]) => `${n}: ${r.non2xx} non-2xx serially`));
    failures.push(...died);
    for (const f of failures) console.log(`WARNING: ${f}`);

    mkdirSync(join(args.out, '..'), { recursive: true });
    writeFileSync(
      args.out,
      `${JSON.stringify(
        {
          startedAt: startedAt.toISOString(),
          command: `node bench/run.ts ${process.argv.slice(2).join(' ')}`.trim(),
          machine: { ...m, loadavgStart: load0, loadavgEnd: endLoad },
          options,
          targets: targets.map(({ name, description }) => ({ name, description })),
          skipped,
          figures: figures.map((f) => ({
            key: f.key,
            label: f.label,
            values: f.values,
            vsDirect: Object.fromEntries(names.map((n) => [n, ratio(f, n, DIRECT)])),
            vsHttpProxy: Object.fromEntries(names.map((n) => [n, ratio(f, n, HTTP_PROXY)])),
            vsUndici: Object.fromEntries(names.map((n) => [n, ratio(f, n, UNDICI)])),
          })),
          raw: {
            serial: serial && Object.fromEntries(serial),
            throughput: load && Object.fromEntries(load),
            fixedRate: fixed && Object.fromEntries(fixed),
          },
          breakerOpen: breaker,
          configReload: reload,
          operator: external,
          goals,
          warnings: failures,
        },
        null,
        2,
      )}\n`,
    );
    console.log(`\nResults written to ${relative(process.cwd(), args.out)}`);
    if (args.profile) console.log(`CPU profiles written to ${args.profile}`);
    return failures.length > 0 ? 1 : 0;
  } finally {
    await stopAll();
    removeTmp();
  }
}

process.exitCode = await main();
