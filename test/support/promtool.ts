// promtool, built by hack/promtool.sh (a no-op once cached): the suites in test/promtool check the
// chart's alert rules and the programs' /metrics with Prometheus' own checker.
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { RunResult } from './kube.ts';

const SCRIPT = fileURLToPath(new URL('../../hack/promtool.sh', import.meta.url));

export async function ensurePromtool(): Promise<string> {
  const child = spawn('bash', [SCRIPT], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => (out += chunk));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', resolve);
  });
  const path = out.trim().split('\n').at(-1);
  if (code !== 0 || !path) throw new Error(`hack/promtool.sh failed (exit ${code}); see its message above`);
  return path;
}

export type Promtool = (args: readonly string[], input?: string) => Promise<RunResult>;

export function promtoolAt(path: string): Promtool {
  return (args, input) =>
    new Promise((resolve, reject) => {
      const child = execFile(path, args, { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') return reject(err);
        resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
      });
      child.stdin?.end(input);
    });
}
