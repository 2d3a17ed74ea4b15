// A real redis-server for the Redis store's tests, on a free loopback port with its data in a temp
// folder, persisting like a durable deployment should (AOF, fsync on every write). The binary comes
// from hack/debian-tool.sh, which installs Debian's package on a machine without one.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, logTail, startProcess, stopProcess, type Managed } from './processes.ts';

const ENSURE = fileURLToPath(new URL('../../hack/debian-tool.sh', import.meta.url));

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  /** Stops the server (SIGTERM, so the AOF is flushed), keeping its data. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data. */
  start(): Promise<void>;
  /** Stops it and removes its data. */
  destroy(): Promise<void>;
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
    socket.once('data', (d: Buffer) => {
      socket.destroy();
      // A server that requires a password answers, too: with NOAUTH.
      resolve(/^(\+PONG|-NOAUTH)/.test(d.toString()));
    });
    socket.once('error', () => resolve(false));
  });
}

/** `password`: the server requires it (requirepass), as a shared deployment would. */
export async function startRedis(options: { readonly password?: string } = {}): Promise<RedisServer> {
  const bin = execFileSync('bash', [ENSURE, 'redis-server', 'redis-server'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  const dir = mkdtempSync(join(tmpdir(), 'breakwater-redis-'));
  const port = await freePort();
  let server: Managed | undefined;
  const start = async () => {
    server = startProcess('redis-server', bin, [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
      '--appendonly', 'yes', '--appendfsync', 'always', '--protected-mode', 'yes',
      ...(options.password === undefined ? [] : ['--requirepass', options.password]),
    ], join(dir, 'redis.log'));
    const deadline = Date.now() + 10_000;
    while (!(await ping(port))) {
      if (Date.now() > deadline) throw new Error(`redis-server did not answer on ${port}:\n${logTail(server)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  await start();
  const stop = async () => {
    if (server) await stopProcess(server, 5000);
    server = undefined;
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop,
    start,
    destroy: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
