// The command-line tools the suites drive (kubectl, helm, promtool), and the hack/ scripts that build
// them into the cache outside the repository.
import { execFile, spawn } from 'node:child_process';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export type Command = (args: readonly string[], input?: string) => Promise<RunResult>;

export interface CommandOptions {
  readonly timeoutMs?: number;
  readonly env?: NodeJS.ProcessEnv;
}

/** `bin` with `prefix` before every call's arguments; a non-zero exit is a result, not an error. */
export function commandAt(bin: string, prefix: readonly string[] = [], options: CommandOptions = {}): Command {
  return (args, input) =>
    new Promise((resolve, reject) => {
      const child = execFile(
        bin,
        [...prefix, ...args],
        { timeout: options.timeoutMs ?? 60_000, maxBuffer: 32 * 1024 * 1024, ...(options.env && { env: options.env }) },
        (err, stdout, stderr) => {
          if (err && typeof err.code !== 'number') return reject(err);
          resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
        },
      );
      child.stdin?.end(input);
    });
}

/** Runs a build script (a no-op once its tool is cached) and returns the path it prints last. */
export async function runBuildScript(script: string): Promise<string> {
  const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => (out += chunk));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', resolve);
  });
  const path = out.trim().split('\n').at(-1);
  if (code !== 0 || !path) throw new Error(`${script} failed (exit ${code}); see its message above`);
  return path;
}
