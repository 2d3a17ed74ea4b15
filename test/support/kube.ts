// Small helpers for tests against the real API server: the kubectl we built, and bounded polling.
import { join } from 'node:path';
import { commandAt, type RunResult } from './commands.ts';

export type Kubectl = (args: string[], input?: string) => Promise<RunResult>;

/** kubectl from binDir against kubeconfig; never the machine's own kubectl or ~/.kube/config. */
export function kubectlFor(binDir: string, kubeconfig: string): Kubectl {
  return commandAt(join(binDir, 'kubectl'), ['--kubeconfig', kubeconfig]);
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
