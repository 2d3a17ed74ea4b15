// Small helpers for tests against the real API server: the kubectl we built, and bounded polling.
import { execFile } from 'node:child_process';
import { join } from 'node:path';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export type Kubectl = (args: string[], input?: string) => Promise<RunResult>;

/** kubectl from binDir against kubeconfig; never the machine's own kubectl or ~/.kube/config. */
export function kubectlFor(binDir: string, kubeconfig: string): Kubectl {
  return (args, input) =>
    new Promise((resolve, reject) => {
      const child = execFile(
        join(binDir, 'kubectl'),
        ['--kubeconfig', kubeconfig, ...args],
        { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
        (err, stdout, stderr) => {
          if (err && typeof err.code !== 'number') return reject(err);
          resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
        },
      );
      child.stdin?.end(input);
    });
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
