// One HTTP transport for every request to the API server, typed calls and watches alike.
//
// Why not client-node's own: in 2.0.1 `KubeConfig.applySecurityAuthentication` builds a new undici
// Agent for every request, so each call pays a TLS handshake and leaves a socket behind, and nothing
// bounds the number of connections. Here one Agent (keep-alive, capped) serves the process; the
// kubeconfig still supplies the TLS material and the credentials, and credentials are read again for
// every request so a rotated service-account token is picked up. HTTP(S) proxies from the kubeconfig
// are not supported: the operator talks to its own cluster.
import type { RequestOptions } from 'node:https';
import {
  ResponseContext,
  wrapHttpLibrary,
  type HttpLibrary,
  type KubeConfig,
  type RequestContext,
} from '@kubernetes/client-node';
import { Agent, fetch, type Response } from 'undici';
import { KubeError } from './errors.ts';

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
  private readonly kubeConfig: KubeConfig;
  private readonly userAgent: string;
  private readonly observers = new Set<RequestObserver>();
  private agent: Agent | undefined;

  /** `userAgent` goes on every request, so the API server's audit log and metrics name us. */
  constructor(kubeConfig: KubeConfig, userAgent: string) {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new KubeError(0, 'the kubeconfig names no current cluster', { code: 'no_config' });
    this.kubeConfig = kubeConfig;
    this.userAgent = userAgent;
    this.server = cluster.server.replace(/\/+$/, '');
  }

  /** Calls observer after every response (or failure to get one); returns the unsubscribe function. */
  observe(observer: RequestObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  /** A request to `path` (with its query) on the API server. Throws KubeError when no response came. */
  async fetch(path: string, request: TransportRequest): Promise<Response> {
    const url = path.startsWith('http') ? path : `${this.server}${path}`;
    const { headers, agent } = await this.credentials();
    const signals = [request.signal, request.noTimeout ? undefined : AbortSignal.timeout(REQUEST_TIMEOUT_MS)].filter(
      (s): s is AbortSignal => s !== undefined,
    );
    const started = performance.now();
    const verb = request.verb ?? request.method;
    try {
      const response = await fetch(url, {
        method: request.method,
        headers: { ...headers, ...request.headers, 'user-agent': this.userAgent },
        body: request.body,
        signal: signals.length > 0 ? AbortSignal.any(signals) : undefined,
        dispatcher: agent,
      });
      this.record({ verb, status: response.status, durationMs: performance.now() - started });
      return response;
    } catch (error) {
      this.record({ verb, status: 0, durationMs: performance.now() - started });
      if (request.signal?.aborted) throw error;
      throw new KubeError(0, `${request.method} ${path}: ${describe(error)}`, { cause: error });
    }
  }

  /** The generated API clients send through this library, so they share the agent and the observers. */
  httpLibrary(): HttpLibrary {
    return wrapHttpLibrary({
      send: async (context: RequestContext): Promise<ResponseContext> => {
        const response = await this.fetch(context.getUrl(), {
          method: context.getHttpMethod().toString(),
          headers: context.getHeaders(),
          body: context.getBody() as string | undefined,
          signal: context.getSignal(),
        });
        const headers: Record<string, string> = {};
        response.headers.forEach((value, name) => (headers[name] = value));
        const body = response.body;
        return new ResponseContext(response.status, headers, {
          text: () => response.text(),
          binary: async () => Buffer.from(await response.arrayBuffer()),
          stream: () => body as ReadableStream<Uint8Array> | null,
        });
      },
    });
  }

  async close(): Promise<void> {
    const agent = this.agent;
    this.agent = undefined;
    await agent?.close();
  }

  private async credentials(): Promise<{ headers: Record<string, string>; agent: Agent }> {
    const options: RequestOptions = {};
    await this.kubeConfig.applyToHTTPSOptions(options);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(options.headers ?? {})) {
      if (value !== undefined) headers[name] = String(value);
    }
    if (options.auth) headers.authorization = `Basic ${Buffer.from(options.auth).toString('base64')}`;
    this.agent ??= new Agent({
      connections: MAX_CONNECTIONS,
      connect: {
        ca: options.ca,
        cert: options.cert,
        key: options.key,
        ...(options.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: options.rejectUnauthorized }),
        ...(options.servername === undefined ? {} : { servername: options.servername }),
        // Detects a dead peer on an idle watch connection sooner than the watchdog would.
        keepAlive: true,
        keepAliveInitialDelay: 30_000,
      },
    });
    return { headers, agent: this.agent };
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
