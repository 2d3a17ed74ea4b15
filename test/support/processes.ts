// Child processes of a test control plane. Each runs in its own process group (detached) so that
// stopping it also stops anything it forked, and its output goes to a log file that failures quote.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';

export interface Managed {
  name: string;
  logPath: string;
  child: ChildProcess;
  exited: Promise<void>;
}

// Groups still running and folders still on disk. Detached children do not get the terminal's Ctrl-C,
// so whatever ends this process (normal exit, an unhandled error, a signal) must end them too.
const live = new Set<number>();
const dirs = new Set<string>();
let hooked = false;
const SIGNAL_EXIT_CODES = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 } as const;

function cleanUpNow(): void {
  for (const pgid of live) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', cleanUpNow);
  for (const sig of Object.keys(SIGNAL_EXIT_CODES) as (keyof typeof SIGNAL_EXIT_CODES)[]) {
    process.on(sig, () => {
      cleanUpNow();
      // When nobody else handles the signal, keep its default meaning: exit.
      if (process.listenerCount(sig) === 1) process.exit(SIGNAL_EXIT_CODES[sig]);
    });
  }
}

/** Removes dir when this process ends, unless forgetDir() was called first. */
export function removeDirAtExit(dir: string): void {
  hookExit();
  dirs.add(dir);
}

export function forgetDir(dir: string): void {
  dirs.delete(dir);
}

/** `env` replaces the environment (default: this process's). */
export function startProcess(name: string, bin: string, args: string[], logPath: string, env?: NodeJS.ProcessEnv): Managed {
  hookExit();
  const fd = openSync(logPath, 'a');
  const child = spawn(bin, args, { detached: true, stdio: ['ignore', fd, fd], ...(env && { env }) });
  closeSync(fd);
  if (child.pid !== undefined) live.add(child.pid);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      if (child.pid !== undefined) live.delete(child.pid);
      resolve();
    });
    child.once('error', () => resolve());
  });
  return { name, logPath, child, exited };
}

/** SIGTERM the process group, then SIGKILL it when it has not exited within graceMs. */
export async function stopProcess(p: Managed, graceMs = 10_000): Promise<void> {
  const pid = p.child.pid;
  if (pid === undefined || p.child.exitCode !== null || p.child.signalCode !== null) return;
  try {
    process.kill(-pid, 'SIGTERM');
  } catch {
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), graceMs);
  });
  const late = await Promise.race([p.exited.then(() => false), timedOut]);
  clearTimeout(timer);
  if (late) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // exited in between
    }
    await p.exited;
  }
  live.delete(pid);
}

export function isRunning(p: Managed): boolean {
  return p.child.exitCode === null && p.child.signalCode === null;
}

export function logTail(p: Managed, lines = 30): string {
  try {
    return readFileSync(p.logPath, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}
