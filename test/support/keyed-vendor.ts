// A loopback vendor that deduplicates by idempotency key, as Stripe or an ERP does: the first request
// with a key is processed (and remembered with its body), a repeat gets the same answer without being
// processed again. It can be switched down (every request fails: a 503 or a dropped connection) and
// records when each request arrived, so tests can count keys, repeats and the rate it was called at.
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface Arrival {
  /** performance.now() at arrival. */
  readonly at: number;
  readonly key: string | undefined;
  readonly status: number | 'dropped';
}

export interface KeyedVendor {
  readonly url: string;
  /** Processed keys: the body of the first request with each, and when it came. */
  readonly processed: ReadonlyMap<string, { readonly body: string; readonly at: number }>;
  readonly arrivals: readonly Arrival[];
  /** Requests with a key already processed whose body differs from the first one's: must stay 0. */
  readonly conflicts: number;
  /** Requests with a key already processed (answered again, not processed again). */
  readonly repeats: number;
  setDown(down: boolean): void;
  close(): Promise<void>;
}

export async function startKeyedVendor(options: { readonly header?: string; readonly delayMs?: number } = {}): Promise<KeyedVendor> {
  const header = (options.header ?? 'idempotency-key').toLowerCase();
  const processed = new Map<string, { body: string; at: number }>();
  const arrivals: Arrival[] = [];
  let down = false;
  let conflicts = 0;
  let repeats = 0;
  let failures = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = performance.now();
      const key = req.headers[header] as string | undefined;
      if (down) {
        // Half the failures are a dropped connection, half a 503.
        if (failures++ % 2 === 0) {
          arrivals.push({ at, key, status: 'dropped' });
          req.socket.destroy();
        } else {
          arrivals.push({ at, key, status: 503 });
          res.writeHead(503).end('down');
        }
        return;
      }
      arrivals.push({ at, key, status: 201 });
      const body = Buffer.concat(chunks).toString();
      if (key !== undefined) {
        const first = processed.get(key);
        if (first) {
          repeats++;
          if (first.body !== body) conflicts++;
        } else processed.set(key, { body, at });
      }
      const answer = () => res.writeHead(201, { 'content-type': 'application/json' }).end('{"ok":true}');
      if (options.delayMs) setTimeout(answer, options.delayMs);
      else answer();
    });
  });
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    processed,
    arrivals,
    get conflicts() {
      return conflicts;
    },
    get repeats() {
      return repeats;
    },
    setDown: (value) => {
      down = value;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
