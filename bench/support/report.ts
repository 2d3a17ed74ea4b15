// Figures, their ratios to the two baselines, and the goals of the benchmark issue, as Markdown tables:
// what the terminal shows is what docs/performance.md pastes.

export const DIRECT = 'direct';
export const HTTP_PROXY = 'http-proxy';
export const UNDICI = 'undici';
export const NGINX = 'nginx';

export interface Figure {
  readonly key: string;
  readonly label: string;
  readonly format: (value: number) => string;
  /** Per target; missing where the figure does not apply (no proxy process for `direct`). */
  readonly values: Record<string, number | undefined>;
  /** Added-over-direct figures have no meaningful ratio to direct (whose own is zero). */
  readonly overDirect?: boolean;
}

export interface Goal {
  readonly goal: string;
  readonly measured: string;
  /** Undefined when the figure could not be measured in this run. */
  readonly met: boolean | undefined;
}

export const fmt = {
  rps: (v: number) => Math.round(v).toLocaleString('en-US'),
  ms: (v: number) => v.toFixed(3),
  cpu: (v: number) => v.toFixed(3),
  mb: (v: number) => (v / 2 ** 20).toFixed(1),
  ratio: (v: number) => `${v.toFixed(2)}×`,
};

export function ratio(figure: Figure, target: string, baseline: string): number | undefined {
  const value = figure.values[target];
  const base = figure.values[baseline];
  if (value === undefined || base === undefined || base === 0 || !Number.isFinite(value) || !Number.isFinite(base)) return undefined;
  if (figure.overDirect && baseline === DIRECT) return undefined;
  return value / base;
}

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

export function figureTables(figures: readonly Figure[], targets: readonly string[]): { values: string; vsDirect: string; vsHttpProxy: string; vsUndici: string } {
  const header = ['figure', ...targets];
  const cell = (v: number | undefined, format: (n: number) => string) => (v === undefined || Number.isNaN(v) ? '—' : format(v));
  return {
    values: table(
      header,
      figures.map((f) => [f.label, ...targets.map((t) => cell(f.values[t], f.format))]),
    ),
    vsDirect: table(
      header,
      figures.filter((f) => !f.overDirect && f.values[DIRECT] !== undefined).map((f) => [f.label, ...targets.map((t) => cell(ratio(f, t, DIRECT), fmt.ratio))]),
    ),
    vsHttpProxy: table(
      header,
      figures.map((f) => [f.label, ...targets.map((t) => cell(ratio(f, t, HTTP_PROXY), fmt.ratio))]),
    ),
    vsUndici: table(
      header,
      figures.map((f) => [f.label, ...targets.map((t) => cell(ratio(f, t, UNDICI), fmt.ratio))]),
    ),
  };
}

export function goalsTable(goals: readonly Goal[]): string {
  return table(
    ['goal', 'measured', 'met'],
    goals.map((g) => [g.goal, g.measured, g.met === undefined ? 'not measured' : g.met ? 'yes' : 'NO']),
  );
}
