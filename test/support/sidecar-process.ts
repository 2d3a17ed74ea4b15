// Runs `node cmd/breakwater.ts sidecar` as a child process, for what only a real process shows: signal
// handling, exit codes and the addresses it binds. Ports come from its "listening" log line.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../cmd/breakwater.ts', import.meta.url));

export interface SidecarProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly adminPort: number;
  readonly output: () => string;
  readonly exited: Promise<number | null>;
}

/**
 * Spawns the sidecar; resolves once it logs its bound addresses, rejects if it exits first. `env` is
 * added to this process's; `uid` and `gid` run it as another user (the caller must be root): file
 * permissions do not bind root.
 */
export function spawnSidecar(
  args: string[],
  options: { readonly env?: Record<string, string>; readonly uid?: number; readonly gid?: number } = {},
): Promise<SidecarProcess> {
  const { env = {}, ...user } = options;
  const child = spawn(process.execPath, [CLI, 'sidecar', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, ...user });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /"proxy":"127\.0\.0\.1:(\d+)","admin":":(\d+)"/.exec(output);
      if (match) resolve({ child, port: Number(match[1]), adminPort: Number(match[2]), output: () => output, exited });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((code) => reject(new Error(`sidecar exited with ${code} before listening:\n${output}`)));
  });
}

/** Runs the sidecar to completion (for startup failures): exit code and everything it printed. */
export function runSidecar(args: string[]): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [CLI, 'sidecar', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, output })));
}
