#!/usr/bin/env node
// The one Breakwater command. Each subcommand lives in its own file beside this one.
import { HelpRequested, usage, UsageError } from '../src/runtime/flags.ts';
import { VERSION } from '../src/runtime/version.ts';

type Subcommand = (argv: readonly string[]) => Promise<number>;

// Loaded on demand: a sidecar that imported the operator would carry its Kubernetes client, certificate
// authority and admission webhook (memory and a slower start) in every pod.
const SUBCOMMANDS: Record<string, () => Promise<Subcommand>> = {
  sidecar: async () => (await import('./sidecar.ts')).sidecar,
  validate: async () => (await import('./validate.ts')).validate,
  deliveries: async () => (await import('./deliveries.ts')).deliveries,
  demo: async () => (await import('./demo.ts')).demo,
  operator: async () => (await import('./operator.ts')).operator,
  status: async () => (await import('./status.ts')).status,
  isolate: async () => (await import('./isolate.ts')).isolate,
};

const HELP = `usage: breakwater <command> [flags]

commands:
  sidecar          run the proxy: --config FILE, --port 15080, --admin-port 15090 (sidecar --help for all flags)
  validate FILE…   check ExternalIntegration files; exit 1 if any is invalid
  deliveries       list, show, replay, purge and export durable deliveries (deliveries --help)
  demo             a misbehaving vendor called directly and through the sidecar, side by side
  operator         reconcile ExternalIntegrations into sidecar config and status (in or against a cluster)
  status           every integration's readiness, breaker across pods, error rate and pods (-n, -A, -o json);
                   exit 1 if any is unhealthy. Also kubectl breakwater status, installed as kubectl-breakwater
  isolate NAME     hold an integration's circuit open in every pod (-n NS); --off releases it
  version          the release (also --version)`;

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  // `help sidecar` is `sidecar --help`.
  if (command === 'help' && rest.length > 0) return main([rest[0]!, '--help']);
  if (command === undefined) {
    // Bad usage: the help goes where errors go.
    console.error(HELP);
    return 64;
  }
  if (command === 'help' || command === '--help' || command === '-h') {
    console.log(HELP);
    return 0;
  }
  if (command === 'version' || command === '--version') {
    console.log(`breakwater ${VERSION}`);
    return 0;
  }
  const load = SUBCOMMANDS[command];
  if (!load) throw new UsageError(`unknown command ${JSON.stringify(command)}\n\n${HELP}`);
  try {
    return await (await load())(rest);
  } catch (error) {
    // Here the command is known: `help sidecar` came in as `help`.
    if (!(error instanceof HelpRequested)) throw error;
    console.log(usage(command, error.specs));
    return 0;
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  if (error instanceof UsageError) {
    console.error(error.message);
    process.exitCode = error.exitCode;
  } else throw error;
}
