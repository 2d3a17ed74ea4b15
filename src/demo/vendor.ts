// A third-party API having a bad day, on loopback: it goes through phases (healthy, slow, failing,
// rate-limiting, healthy) on a shared clock, so two copies of it — one called directly, one behind the
// sidecar — misbehave identically.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const PHASES = ['healthy', 'slow', 'failing', 'rate-limiting', 'healthy'] as const;
export type Phase = (typeof PHASES)[number];

/** In the slow phase this share of calls hangs far beyond any sane per-attempt timeout. */
const SLOW_SHARE = 0.5;
const HANG_MS = 3000;
/** In the failing phase a call is reset this often, and answered 503 otherwise. */
const RESET_SHARE = 0.3;
/** Calls per second the vendor serves while rate-limiting; beyond it, 429 with Retry-After. */
const QUOTA_PER_SECOND = 12;

export interface PhaseClock {
  readonly phaseMs: number;
  readonly startedAt: number;
}

export function phaseAt(clock: PhaseClock, now: number): Phase {
  const index = Math.min(PHASES.length - 1, Math.floor((now - clock.startedAt) / clock.phaseMs));
  return PHASES[Math.max(0, index)]!;
}

export interface Vendor {
  readonly url: string;
  /** Requests that reached the vendor, whatever it did with them. */
  calls: number;
  /** Idempotency-Keys of the orders it processed. */
  readonly processed: Set<string>;
  /**
   * Orders that came again with a key already processed, answered from the vendor's idempotency store
   * without processing them again, as Stripe does: an attempt whose answer arrived after the sidecar's
   * attempt timeout is sent again with the same key.
   */
  repeats: number;
  /** Orders processed that carried no Idempotency-Key, so a repeat could not have been recognised. */
  unkeyed: number;
  close(): Promise<void>;
}

/** Orders sent here are invalid: the vendor refuses them (422) in every phase. */
export const REFUSED_PATH = '/orders/invalid';

export async function startVendor(clock: PhaseClock): Promise<Vendor> {
  let quotaSecond = -1;
  let quotaUsed = 0;
  const hanging = new Set<ServerResponse>();
  const vendor = { url: '', calls: 0, processed: new Set<string>(), repeats: 0, unkeyed: 0, close: async () => {} };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    vendor.calls++;
    req.resume();
    const key = req.headers['idempotency-key'];
    const ok = () => {
      if (res.destroyed) return;
      if (typeof key !== 'string') vendor.unkeyed++;
      else if (vendor.processed.has(key)) vendor.repeats++;
      else vendor.processed.add(key);
      answer(res, 200, { price: 42 });
    };
    if (req.url === REFUSED_PATH) return answer(res, 422, { error: 'invalid order' });
    const now = Date.now();
    switch (phaseAt(clock, now)) {
      case 'healthy':
        return ok();
      case 'slow':
        if (Math.random() >= SLOW_SHARE) return ok();
        hanging.add(res);
        res.on('close', () => hanging.delete(res));
        setTimeout(ok, HANG_MS).unref();
        return;
      case 'failing':
        if (Math.random() < RESET_SHARE) return void req.socket.destroy();
        return answer(res, 503, { error: 'service unavailable' });
      case 'rate-limiting': {
        const second = Math.floor(now / 1000);
        if (second !== quotaSecond) [quotaSecond, quotaUsed] = [second, 0];
        if (++quotaUsed > QUOTA_PER_SECOND) return answer(res, 429, { error: 'quota exceeded' }, { 'retry-after': '1' });
        return ok();
      }
    }
  });
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  vendor.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  vendor.close = () =>
    new Promise<void>((resolve) => {
      for (const res of hanging) res.destroy();
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return vendor;
}

function answer(res: ServerResponse, status: number, body: object, headers: Record<string, string> = {}): void {
  if (res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}
