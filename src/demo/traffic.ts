// Open-loop traffic, the way real users arrive: a call every `intervalMs` whether or not earlier ones
// have answered, so a stalled vendor shows up as latency and errors instead of as fewer calls.
import { Agent, request } from 'undici';
import { SIDECAR_ERRORS, type SidecarErrorCode } from '../api/errors.ts';
import { ATTEMPTS_HEADER } from '../api/names.ts';

export type Outcome =
  | 'ok' // 2xx on the first attempt
  | 'recovered' // 2xx after the sidecar retried
  | 'fallback' // the integration's fallback answered instead of the vendor
  | SidecarErrorCode
  | 'vendor_error' // the vendor's own 4xx/5xx reached the app
  | 'timeout' // the app gave up waiting
  | 'reset'; // the connection broke under the app

export const SUCCESS: ReadonlySet<Outcome> = new Set(['ok', 'recovered', 'fallback']);

export interface Sample {
  readonly at: number;
  readonly outcome: Outcome;
  readonly latencyMs: number;
}

export interface TrafficOptions {
  readonly url: string;
  readonly intervalMs: number;
  /** How long the app waits for an answer before giving up. */
  readonly clientTimeoutMs: number;
  /** Recognises the integration's fallback body. */
  readonly fallbackMarker?: string;
  readonly onSample: (sample: Sample) => void;
}

export interface Traffic {
  /** Stops sending and resolves once every call in flight has finished. */
  stop(): Promise<void>;
}

export function startTraffic(options: TrafficOptions): Traffic {
  const dispatcher = new Agent({ connections: 256, keepAliveTimeout: 10_000 });
  const inFlight = new Set<Promise<void>>();
  const timer = setInterval(() => {
    const call = callOnce(dispatcher, options).then(options.onSample);
    inFlight.add(call);
    void call.finally(() => inFlight.delete(call));
  }, options.intervalMs);
  return {
    async stop() {
      clearInterval(timer);
      await Promise.all(inFlight);
      await dispatcher.close();
    },
  };
}

async function callOnce(dispatcher: Agent, options: TrafficOptions): Promise<Sample> {
  const at = Date.now();
  const started = performance.now();
  const sample = (outcome: Outcome): Sample => ({ at, outcome, latencyMs: performance.now() - started });
  try {
    const res = await request(options.url, { dispatcher, signal: AbortSignal.timeout(options.clientTimeoutMs) });
    const body = await res.body.text();
    if (res.statusCode < 300) {
      if (options.fallbackMarker && body.includes(options.fallbackMarker)) return sample('fallback');
      return sample(Number(res.headers[ATTEMPTS_HEADER] ?? 1) > 1 ? 'recovered' : 'ok');
    }
    return sample(sidecarError(body) ?? 'vendor_error');
  } catch (error) {
    const name = (error as Error).name;
    return sample(name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : 'reset');
  }
}

/** The sidecar's own error code, when the body is one of its error documents. */
function sidecarError(body: string): Outcome | undefined {
  try {
    const code = (JSON.parse(body) as { error?: unknown }).error;
    return typeof code === 'string' && Object.hasOwn(SIDECAR_ERRORS, code) ? (code as SidecarErrorCode) : undefined;
  } catch {
    return undefined;
  }
}
