// `breakwater demo` (what `make demo` runs): no cluster needed.
import { readFile } from 'node:fs/promises';
import { parseIntegrations } from '../src/api/index.ts';
import { runDurableScene } from '../src/demo/durable.ts';
import { runDemo } from '../src/demo/run.ts';
import { parseFlags, UsageError, type FlagSpec } from '../src/runtime/flags.ts';

const FLAGS = {
  config: { type: 'string', default: 'examples/demo.yaml', description: 'the integration to put in front of the vendor' },
  'phase-duration': { type: 'duration', default: '4s', description: 'how long each vendor phase lasts' },
  rate: { type: 'integer', default: 20, description: 'calls per second, to each of the two vendors' },
  scene: {
    type: 'string',
    default: 'both',
    choices: ['calls', 'durable', 'both'],
    description: 'calls: direct vs through the sidecar; durable: the same with Prefer: respond-async; both',
  },
} satisfies Record<string, FlagSpec>;

export async function demo(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseFlags(FLAGS, argv);
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  if (values.rate < 1) throw new UsageError(`--rate must be 1 or more calls per second, got ${values.rate}`);
  const aborted = new AbortController();
  const stop = () => aborted.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // The running entry point, source or compiled, so the demo's sidecar is the same build.
  const cli = process.argv[1]!;
  const out = (text: string) => console.log(text);
  if (values.scene !== 'durable') {
    await runDemo({ cli, configFile: values.config, phaseMs: values['phase-duration'], ratePerSecond: values.rate, out, signal: aborted.signal });
  }
  if (values.scene !== 'calls' && !aborted.signal.aborted) {
    const [integration] = parseIntegrations(await readFile(values.config, 'utf8')).integrations;
    if (!integration) throw new UsageError(`${values.config} must hold one valid integration`);
    await runDurableScene({ cli, integration, phaseMs: values['phase-duration'], ratePerSecond: values.rate, out, signal: aborted.signal });
  }
  return aborted.signal.aborted ? 130 : 0;
}
