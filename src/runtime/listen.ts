// Binding a server's port, the one way every server here does it (proxy, admin, webhook): a port that
// cannot be bound rejects with a ListenError that names the address and what to do about it, and a
// listen that succeeded leaves no error listener behind.
import type { Server } from 'node:net';

/** Why a port could not be bound, in the words of what to do about it. */
const REASONS: Readonly<Record<string, string>> = {
  EADDRINUSE: 'the port is in use by another process (pick another port, or stop that one)',
  EACCES: 'not allowed to bind that port (below 1024 needs privileges)',
  EADDRNOTAVAIL: 'no such address on this machine',
};

export class ListenError extends Error {
  override readonly name = 'ListenError';
  /** The system's code: EADDRINUSE, EACCES or EADDRNOTAVAIL. */
  readonly code: string;
  readonly address: string;
  readonly port: number;

  constructor(code: string, address: string, port: number, cause: Error) {
    super(`cannot listen on ${address}:${port}: ${REASONS[code]}`, { cause });
    this.code = code;
    this.address = address;
    this.port = port;
  }
}

export function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException) => reject(error.code && error.code in REASONS ? new ListenError(error.code, host, port, error) : error);
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      resolve();
    });
  });
}
