// A target is one way of reaching the origin: directly, or through one proxy process.
import { firstLine, startChild, type Child } from './children.ts';
import { HOST, waitForOk } from './net.ts';
import { rssBytes } from './proc.ts';
import { nodeRuntimeEnv } from './runtime.ts';

export interface Target {
  readonly name: string;
  /** One line for the table's legend: what this target is and how it is configured. */
  readonly description: string;
  /** The full URL a client requests; every target answers it with the origin's 200. */
  readonly url: string;
  /** The proxy process whose CPU and memory are measured; absent for `direct`. */
  readonly child?: Child;
  /** RSS right after the target became ready, before any load. */
  readonly idleRssBytes?: number;
  /** Breakwater only: the admin server (/metrics, /readyz). */
  readonly adminUrl?: string;
}

/** The path requested of the origin; proxies that route by prefix put theirs in front of it. */
export const ORIGIN_PATH = '/v1/items?page=1';

/**
 * Runs Node with `args`, or under `launcher` (a command and its flags, e.g. valgrind's), which then
 * runs Node in the same process.
 */
export function nodeCommand(args: readonly string[], launcher: readonly string[] = []): [string, string[]] {
  return launcher.length === 0 ? [process.execPath, [...args]] : [launcher[0]!, [...launcher.slice(1), process.execPath, ...args]];
}

/**
 * Starts a Node program that takes the origin URL and announces `{"port":N}` (bench/targets/*), with
 * `nodeFlags` (e.g. --import of a probe) before the program.
 */
export async function startNodeProxy(
  name: string,
  program: string,
  originUrl: string,
  description: string,
  launcher: readonly string[] = [],
  nodeFlags: readonly string[] = [],
): Promise<Target> {
  const child = startChild(name, ...nodeCommand([...nodeFlags, program, originUrl], launcher), { env: nodeRuntimeEnv() });
  // Under a launcher (valgrind), Node starts many times slower.
  const { port } = JSON.parse(await firstLine(child, launcher.length === 0 ? undefined : 120_000)) as { port: number };
  const url = `http://${HOST}:${port}${ORIGIN_PATH}`;
  await waitForOk(url);
  return { name, description, url, child, idleRssBytes: rssBytes(child.pid) };
}
