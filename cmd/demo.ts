// `breakwater demo` (what `make demo` runs): no cluster needed.
import { runDemo } from '../src/demo/run.ts';
import { parseFlags, type FlagSpec } from '../src/runtime/flags.ts';

const FLAGS = {
  config: { type: 'string', default: 'examples/demo.yaml', description: 'the integration to put in front of the vendor' },
  'phase-duration': { type: 'duration', default: '4s', description: 'how long each vendor phase lasts' },
  rate: { type: 'integer', default: 20, description: 'calls per second, to each of the two vendors' },
} satisfies Record<string, FlagSpec>;

export async function demo(argv: readonly string[]): Promise<number> {
  const { values } = parseFlags(FLAGS, argv);
  const aborted = new AbortController();
  const stop = () => aborted.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await runDemo({
    // The running entry point, source or compiled, so the demo's sidecar is the same build.
    cli: process.argv[1]!,
    configFile: values.config,
    phaseMs: values['phase-duration'],
    ratePerSecond: values.rate,
    out: (text) => console.log(text),
    signal: aborted.signal,
  });
  return aborted.signal.aborted ? 130 : 0;
}
