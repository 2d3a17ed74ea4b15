// One HTTP transport for every request to the API server, plain calls and watches alike: one Agent
// (keep-alive, capped) serves the process, so a call costs no TLS handshake and leaves no socket
// behind. Credentials are asked for on every request, so a rotated token or an expired exec
// credential is picked up; a 401 asks once more and retries.
import { Agent, fetch, type Response } from 'undici';
import type { Credential } from './credentials.ts';
import { KubeError } from './errors.ts';
import type { ClusterConnection } from './kubeconfig.ts';

/** Any call but a watch that has not answered in this long is abandoned (a half-open connection). */
export const REQUEST_TIMEOUT_MS = 30_000;
const MAX_CONNECTIONS = 32;

export interface RequestRecord {
  /** HTTP method, or WATCH / LIST for the informer's own requests. */
  readonly verb: string;
  /** HTTP status, or 0 when no response came. */
  readonly status: number;
  readonly durationMs: number;
}

export type RequestObserver = (record: RequestRecord) => void;

export interface TransportRequest {
  readonly method: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  readonly signal?: AbortSignal;
  /** Label for observers; defaults to the method. */
  readonly verb?: string;
  /** Watches stay open for minutes and are bounded by their own watchdog instead. */
  readonly noTimeout?: boolean;
}

export class Transport {
  readonly server: string;
  private readonly connection: ClusterConnection;
  private readonly userAgent: string;
  private readonly observers = new Set<RequestObserver>();
  private agent: { readonly dispatcher: Agent; readonly cert?: string; readonly key?: string } | undefined;

  /** `userAgent` goes on every request, so the API server's audit log and metrics name us. */
  constructor(connection: ClusterConnection, userAgent: string) {
    this.connection = connection;
    this.userAgent = userAgent;
    this.server = connection.server;
  }

  /** Calls observer after every response (or failure to get one); returns the unsubscribe function. */
  observe(observer: RequestObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  /** A request to `path` (with its query) on the API server. Throws KubeError when no response came. */
  async fetch(path: string, request: TransportRequest): Promise<Response> {
    const response = await this.attempt(path, request);
    if (response.status !== 401 || !this.connection.credentials.rejected()) return response;
    await response.body?.cancel();
    return this.attempt(path, request);
  }

  async close(): Promise<void> {
    const agent = this.agent;
    this.agent = undefined;
    await agent?.dispatcher.close();
  }

  private async attempt(path: string, request: TransportRequest): Promise<Response> {
    const url = path.startsWith('http') ? path : `${this.server}${path}`;
    const credential = await this.connection.credentials.current();
    const signals = [request.signal, request.noTimeout ? undefined : AbortSignal.timeout(REQUEST_TIMEOUT_MS)].filter(
      (s): s is AbortSignal => s !== undefined,
    );
    const started = performance.now();
    const verb = request.verb ?? request.method;
    try {
      const response = await fetch(url, {
        method: request.method,
        headers: {
          ...(credential.authorization && { authorization: credential.authorization }),
          ...request.headers,
          'user-agent': this.userAgent,
        },
        body: request.body,
        signal: signals.length > 0 ? AbortSignal.any(signals) : undefined,
        dispatcher: this.dispatcher(credential),
      });
      this.record({ verb, status: response.status, durationMs: performance.now() - started });
      return response;
    } catch (error) {
      this.record({ verb, status: 0, durationMs: performance.now() - started });
      if (request.signal?.aborted) throw error;
      throw new KubeError(0, `${request.method} ${path}: ${describe(error)}`, { cause: error });
    }
  }

  /** The shared Agent; a new one when an exec plugin hands out a new client certificate. */
  private dispatcher(credential: Credential): Agent {
    const tls = this.connection.tls;
    const cert = credential.cert ?? tls.cert;
    const key = credential.key ?? tls.key;
    if (this.agent && this.agent.cert === cert && this.agent.key === key) return this.agent.dispatcher;
    // Requests still running on the old agent finish there; close() waits for them.
    void this.agent?.dispatcher.close();
    const dispatcher = new Agent({
      connections: MAX_CONNECTIONS,
      connect: {
        ca: tls.ca,
        cert,
        key,
        rejectUnauthorized: tls.rejectUnauthorized,
        ...(tls.servername === undefined ? {} : { servername: tls.servername }),
        // Detects a dead peer on an idle watch connection sooner than the watchdog would.
        keepAlive: true,
        keepAliveInitialDelay: 30_000,
      },
    });
    this.agent = { dispatcher, cert, key };
    return dispatcher;
  }

  private record(record: RequestRecord): void {
    for (const observer of this.observers) observer(record);
  }
}

function describe(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
  if (cause && typeof cause.code === 'string') return cause.code;
  return error instanceof Error ? error.message : String(error);
}
