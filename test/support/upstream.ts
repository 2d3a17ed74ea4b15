// A scripted vendor on 127.0.0.1 that misbehaves on purpose, one step per request in order: answer with
// a status (after a delay), destroy the socket, hang, or anything a function does. It counts TCP
// connections and concurrent requests, and records what each request looked like to the vendor. Given
// a certificate it serves HTTPS, and records the SNI each request came with.
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { SecureContextOptions, TLSSocket } from 'node:tls';

export interface Respond {
  readonly status?: number;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  /** Wait this long before answering (after the request body has arrived). */
  readonly delayMs?: number;
}

export type Step =
  | Respond
  /** Destroy the socket as soon as the request arrives: a reset, to the client. */
  | 'destroy'
  /** Never answer. */
  | 'hang'
  | ((req: IncomingMessage, res: ServerResponse, seen: SeenRequest) => void);

export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  /** The server name the client sent in the TLS handshake (SNI); undefined over plain HTTP or without one. */
  readonly servername: string | undefined;
  /** Bytes of body received so far. */
  bytes: number;
  body: Buffer;
  /** The connection went away before the response was complete. */
  aborted: boolean;
  /** Settles when the exchange is over, either way. */
  readonly done: Promise<void>;
}

export interface UpstreamOptions {
  /** Serve HTTPS with this certificate and key (PEM); the URL then starts with https://127.0.0.1. */
  readonly tls?: Pick<SecureContextOptions, 'cert' | 'key'>;
}

export interface ScriptedUpstream {
  readonly url: string;
  readonly port: number;
  readonly requests: SeenRequest[];
  /** TCP connections accepted so far. */
  readonly connections: number;
  /** TLS handshakes that failed, e.g. because the client did not trust the certificate. */
  readonly failedHandshakes: number;
  /** Serves this certificate and key (PEM) on connections from now on. */
  setCertificate(tls: Pick<SecureContextOptions, 'cert' | 'key'>): void;
  /** Requests being handled right now, and the most there ever were at once. */
  readonly inFlight: number;
  readonly maxInFlight: number;
  /** Queues steps for the next requests, in order. */
  script(...steps: Step[]): void;
  /** Drops the steps not used yet. */
  reset(): void;
  /** What requests get once the script has run out (200 "ok" unless set). */
  otherwise(step: Step): void;
  close(): Promise<void>;
}

export async function startUpstream(options: UpstreamOptions = {}): Promise<ScriptedUpstream> {
  const queue: Step[] = [];
  let fallback: Step = { status: 200, body: 'ok' };
  const requests: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  let failedHandshakes = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const timers = new Set<NodeJS.Timeout>();

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    let settle!: () => void;
    const seen: SeenRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      servername: (req.socket as Partial<TLSSocket>).servername || undefined,
      bytes: 0,
      body: Buffer.alloc(0),
      aborted: false,
      done: new Promise<void>((resolve) => {
        settle = resolve;
      }),
    };
    requests.push(seen);
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => {
      seen.bytes += chunk.length;
      chunks.push(chunk);
    });
    const ended = new Promise<void>((resolve) => req.on('end', resolve));
    void ended.then(() => {
      seen.body = Buffer.concat(chunks);
    });
    res.on('close', () => {
      inFlight--;
      if (!res.writableFinished) seen.aborted = true;
      settle();
    });
    const step = queue.shift() ?? fallback;
    if (step === 'destroy') {
      req.socket.destroy();
    } else if (step === 'hang') {
      req.resume();
    } else if (typeof step === 'function') {
      step(req, res, seen);
    } else {
      void ended.then(() => {
        const answer = () => res.writeHead(step.status ?? 200, step.headers).end(step.body ?? '');
        if (step.delayMs === undefined) answer();
        else {
          const timer = setTimeout(() => {
            timers.delete(timer);
            answer();
          }, step.delayMs);
          timers.add(timer);
        }
      });
    }
  };
  const tls = options.tls;
  const server: Server = tls ? createHttpsServer(tls, handler) : createServer(handler);
  server.on('tlsClientError', () => failedHandshakes++);
  server.on('connection', (socket: Socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    requests,
    get connections() {
      return connections;
    },
    get failedHandshakes() {
      return failedHandshakes;
    },
    setCertificate(next) {
      if (!tls) throw new Error('setCertificate needs a vendor started with tls');
      (server as ReturnType<typeof createHttpsServer>).setSecureContext(next);
    },
    get inFlight() {
      return inFlight;
    },
    get maxInFlight() {
      return maxInFlight;
    },
    script: (...steps) => queue.push(...steps),
    reset: () => {
      queue.length = 0;
    },
    otherwise: (step) => {
      fallback = step;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const timer of timers) clearTimeout(timer);
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
