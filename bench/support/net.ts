// Ports and readiness on loopback. Every address the benchmark touches is 127.0.0.1.
import { createServer, type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';

export const HOST = '127.0.0.1';

/** A port the kernel just handed out; for programs that must be told a port rather than report one. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, HOST, resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

export async function get(url: string, headers: Record<string, string> = {}): Promise<Reply> {
  const { statusCode, headers: replyHeaders, body } = await request(url, { headers, signal: AbortSignal.timeout(5000) });
  return { status: statusCode, headers: replyHeaders, body: await body.text() };
}

/** Polls `url` until it answers 2xx: readiness is observed, never assumed after a sleep. */
export async function waitForOk(url: string, timeoutMs = 15_000, isAlive: () => boolean = () => true): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (!isAlive()) throw new Error(`${url}: the process exited while starting`);
    try {
      const reply = await get(url);
      if (reply.status >= 200 && reply.status < 300) return;
      last = `${reply.status} ${reply.body.trim()}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await sleep(50);
  }
  throw new Error(`${url} not ready within ${timeoutMs} ms: ${last}`);
}
