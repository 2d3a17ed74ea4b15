// Small helpers for tests against the real API server: the kubectl we built, and bounded polling.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { commandAt, type RunResult } from './commands.ts';

export type Kubectl = (args: string[], input?: string) => Promise<RunResult>;

/** kubectl from binDir against kubeconfig; never the machine's own kubectl or ~/.kube/config. */
export function kubectlFor(binDir: string, kubeconfig: string): Kubectl {
  return commandAt(join(binDir, 'kubectl'), ['--kubeconfig', kubeconfig]);
}

const CLI = fileURLToPath(new URL('../../cmd/breakwater.ts', import.meta.url));

/**
 * `kubectl breakwater …` as a user runs it: kubectl finds an executable named kubectl-breakwater (what
 * `npm install -g` links to the CLI) in a folder of its own on PATH, which is all PATH holds besides
 * the system's, with `home` as HOME and `env` added (KUBECONFIG, usually).
 */
export function kubectlPlugin(binDir: string, home: string, env: Record<string, string>): Kubectl {
  const bin = join(home, 'bin');
  mkdirSync(bin, { recursive: true });
  const plugin = join(bin, 'kubectl-breakwater');
  writeFileSync(plugin, `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
  chmodSync(plugin, 0o755);
  const kubectl = commandAt(join(binDir, 'kubectl'), [], { env: { PATH: `${bin}:/usr/bin:/bin`, HOME: home, ...env } });
  return (args, input) => kubectl(['breakwater', ...args], input);
}

/** Runs kubectl and returns its stdout; a non-zero exit throws with kubectl's stderr. */
export async function ok(kubectl: Kubectl, args: string[], input?: string): Promise<string> {
  const r = await kubectl(args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/**
 * Polls probe until it returns a value other than undefined, for at most timeoutMs. On timeout the
 * error says what was awaited and what the last probe saw.
 */
export async function eventually<T>(
  what: string,
  probe: () => Promise<{ done: T | undefined; seen: unknown }>,
  timeoutMs = 60_000,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let seen: unknown;
  for (;;) {
    const r = await probe();
    if (r.done !== undefined) return r.done;
    seen = r.seen;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}; last seen: ${JSON.stringify(seen)}`);
    }
    await new Promise((res) => setTimeout(res, intervalMs));
  }
}
