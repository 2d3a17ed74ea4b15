// Reading what a `/metrics` endpoint serves (Prometheus text exposition), for the demo, the
// benchmarks and the tests, which watch the programs from outside as a scraper would.

/**
 * The sum of the samples of metric `name` whose label set includes every pair in `labels`, or
 * undefined when no sample matches.
 */
export function sumSamples(exposition: string, name: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
  let sum: number | undefined;
  for (const line of exposition.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const present = new Map([...(match[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => present.get(k) === v)) sum = (sum ?? 0) + Number(match[4]);
  }
  return sum;
}
