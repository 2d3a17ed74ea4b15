// promtool, built by hack/promtool.sh (a no-op once cached): the suites in test/promtool check the
// chart's alert rules and the programs' /metrics with Prometheus' own checker.
import { fileURLToPath } from 'node:url';
import { commandAt, runBuildScript, type Command } from './commands.ts';

const SCRIPT = fileURLToPath(new URL('../../hack/promtool.sh', import.meta.url));

export function ensurePromtool(): Promise<string> {
  return runBuildScript(SCRIPT);
}

export type Promtool = Command;

export function promtoolAt(path: string): Promtool {
  return commandAt(path);
}
