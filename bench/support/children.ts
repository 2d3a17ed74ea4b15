// Every process the benchmark starts is registered here, so that a normal end, an error and Ctrl-C all
// stop it: a left-over proxy would hold a port and skew the next run.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const running = new Set<ChildProcess>();
/** Last lines of a child's stderr, kept so a crash can be explained without flooding the terminal. */
const STDERR_TAIL = 4096;

export interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  readonly pid: number;
  stderrTail(): string;
  stop(): Promise<void>;
}

/**
 * Starts a child whose stdout is piped (to read its announcement) and whose stderr is kept in memory;
 * or, with `quietTo`, whose stdout goes to /dev/null and stderr to that file, so that a process logging
 * per request costs the benchmark's own process nothing.
 */
export function startChild(name: string, command: string, args: readonly string[], options: SpawnOptions = {}, quietTo?: string): Child {
  const stderrFd = quietTo === undefined ? undefined : openSync(quietTo, 'w');
  const stdio: SpawnOptions['stdio'] = stderrFd === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', 'ignore', stderrFd];
  const child = spawn(command, args, { stdio, ...options });
  if (stderrFd !== undefined) closeSync(stderrFd);
  if (child.pid === undefined) throw new Error(`${name}: could not start ${command}`);
  running.add(child);
  let tail = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    tail = (tail + chunk).slice(-STDERR_TAIL);
  });
  child.once('exit', () => running.delete(child));
  return {
    name,
    process: child,
    pid: child.pid,
    stderrTail: () => (quietTo === undefined ? tail : readFileSync(quietTo, 'utf8').slice(-STDERR_TAIL)),
    stop: () => stopChild(child),
  };
}

/** SIGTERM, then SIGKILL if the child has not exited within `graceMs` (a sidecar drains first). */
async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((child) => stopChild(child)));
}

/** Resolves with the first stdout line of a child that announces itself, e.g. `{"port":1234}`. */
export async function firstLine(child: Child, timeoutMs = 10_000): Promise<string> {
  const stdout = child.process.stdout;
  if (!stdout) throw new Error(`${child.name}: stdout is not piped`);
  stdout.setEncoding('utf8');
  let buffered = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${child.name}: no output within ${timeoutMs} ms\n${child.stderrTail()}`)), timeoutMs);
    const onData = (chunk: string) => {
      buffered += chunk;
      const end = buffered.indexOf('\n');
      if (end === -1) return;
      done();
      resolve(buffered.slice(0, end));
    };
    const onExit = (code: number | null) => fail(new Error(`${child.name}: exited (${code}) before announcing itself\n${child.stderrTail()}`));
    const fail = (error: Error) => {
      done();
      reject(error);
    };
    const done = () => {
      clearTimeout(timer);
      stdout.off('data', onData);
      child.process.off('exit', onExit);
    };
    stdout.on('data', onData);
    child.process.once('exit', onExit);
  });
}

/**
 * Stops every child on Ctrl-C, SIGTERM or an uncaught error, runs `cleanup` (temporary files), then
 * exits with the usual code.
 */
export function stopAllOnExit(cleanup: () => void): void {
  const bail = (code: number) => () => {
    stopAll()
      .then(cleanup)
      .finally(() => process.exit(code));
  };
  process.once('SIGINT', bail(130));
  process.once('SIGTERM', bail(143));
  process.once('uncaughtException', (error) => {
    console.error(error);
    bail(1)();
  });
  process.once('unhandledRejection', (error) => {
    console.error(error);
    bail(1)();
  });
}

/** Runs `body` in a new temporary directory, then stops every child and removes the directory, on Ctrl-C too. */
export async function inTempDir<T>(prefix: string, body: (tmp: string) => Promise<T>): Promise<T> {
  const tmp = mkdtempSync(join(tmpdir(), prefix));
  const removeTmp = () => rmSync(tmp, { recursive: true, force: true });
  stopAllOnExit(removeTmp);
  try {
    return await body(tmp);
  } finally {
    await stopAll();
    removeTmp();
  }
}
