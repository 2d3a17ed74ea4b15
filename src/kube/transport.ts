// One HTTP transport for every request to the API server, plain calls and watches alike: one keep-alive
// Agent (capped) serves the process, so a call costs no TLS handshake and leaves no socket behind.
// Credentials are asked for on every request, so a rotated token or an expired exec credential is
// picked up; a 401 asks once more and retries. Built on node:http(s) rather than fetch: the operator
// then loads no HTTP client package at all, and a request allocates a fraction of what fetch does.
import type { Agent as HttpAgent, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest, type AgentOptions } from 'node:https';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import type { Credential } from './credentials.ts';
import { KubeError } from './errors.ts';
import type { ClusterConnection } from './kubeconfig.ts';
import { tunnel } from './proxy.ts';

// node:http as CommonJS, not as an ES module: see eslint.config.js.
const http = process.getBuiltinModule('node:http');

/** Any call but a watch that has not answered in this long is abandoned (a half-open connection). */
export const REQUEST_TIMEOUT_MS = 30_000;
const MAX_CONNECTIONS = 32;
/** Detects a dead peer on an idle watch connection sooner than the watchdog would. */
const TCP_KEEPALIVE_MS = 30_000;

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

/** An answer whose body is read once, whole or as it arrives. */
export interface ApiResponse {
  readonly status: number;
  /** The whole body. Throws KubeError when the connection breaks first, or the caller's abort reason. */
  text(): Promise<string>;
  /** The body as it arrives; ends when the server ends it. Throws as text() does. */
  chunks(): AsyncIterable<Uint8Array>;
  /** Drops the body unread. */
  discard(): void;
}

interface Dispatcher {
  readonly agent: HttpAgent;
  readonly cert?: string;
  readonly key?: string;
}

export class Transport {
  readonly server: string;
  private readonly connection: ClusterConnection;
  private readonly userAgent: string;
  private readonly observers = new Set<RequestObserver>();
  private readonly secure: boolean;
  private dispatcher: Dispatcher | undefined;

  /** `userAgent` goes on every request, so the API server's audit log and metrics name us. */
  constructor(connection: ClusterConnection, userAgent: string) {
    this.connection = connection;
    this.userAgent = userAgent;
    this.server = connection.server;
    this.secure = new URL(connection.server).protocol === 'https:';
  }

  /** Calls observer after every response (or failure to get one); returns the unsubscribe function. */
  observe(observer: RequestObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  /** A request to `path` (with its query) on the API server. Throws KubeError when no response came. */
  async fetch(path: string, request: TransportRequest): Promise<ApiResponse> {
    const response = await this.attempt(path, request);
    if (response.status !== 401 || !this.connection.credentials.rejected()) return response;
    response.discard();
    return this.attempt(path, request);
  }

  /** Ends every connection, a request still running included: for after the work using it has stopped. */
  async close(): Promise<void> {
    this.dispatcher?.agent.destroy();
    this.dispatcher = undefined;
  }

  private async attempt(path: string, request: TransportRequest): Promise<ApiResponse> {
    const credential = await this.connection.credentials.current();
    const timeout = request.noTimeout ? undefined : AbortSignal.timeout(REQUEST_TIMEOUT_MS);
    const signals = [request.signal, timeout].filter((s): s is AbortSignal => s !== undefined);
    const signal = signals.length > 1 ? AbortSignal.any(signals) : signals[0];
    const failure = (error: unknown): unknown => {
      if (request.signal?.aborted) return request.signal.reason ?? error;
      const why = timeout?.aborted ? `no answer in ${REQUEST_TIMEOUT_MS / 1000} s` : describe(error);
      return new KubeError(0, `${request.method} ${path}: ${why}`, { cause: error });
    };
    const headers: OutgoingHttpHeaders = {
      ...(credential.authorization && { authorization: credential.authorization }),
      ...request.headers,
      'user-agent': this.userAgent,
      ...(request.body !== undefined && { 'content-length': Buffer.byteLength(request.body) }),
    };
    const started = performance.now();
    const verb = request.verb ?? request.method;
    let message: IncomingMessage;
    try {
      message = await new Promise<IncomingMessage>((resolve, reject) => {
        const send = this.secure ? httpsRequest : http.request;
        const req = send(`${this.server}${path}`, { method: request.method, headers, agent: this.agentFor(credential), signal }, resolve);
        req.on('error', reject);
        req.end(request.body);
      });
    } catch (error) {
      this.record({ verb, status: 0, durationMs: performance.now() - started });
      throw failure(error);
    }
    this.record({ verb, status: message.statusCode ?? 0, durationMs: performance.now() - started });
    return {
      status: message.statusCode ?? 0,
      async text() {
        const parts: Buffer[] = [];
        try {
          for await (const chunk of message) parts.push(chunk as Buffer);
        } catch (error) {
          throw failure(error);
        }
        return Buffer.concat(parts).toString('utf8');
      },
      async *chunks() {
        try {
          yield* message;
        } catch (error) {
          throw failure(error);
        }
        // An abort can end the stream quietly; the caller must still learn that it was aborted.
        if (signal?.aborted) throw failure(signal.reason);
      },
      discard: () => message.resume(),
    };
  }

  /** The shared Agent; a new one when an exec plugin hands out a new client certificate. */
  private agentFor(credential: Credential): HttpAgent {
    const tls = this.connection.tls;
    const cert = credential.cert ?? tls.cert;
    const key = credential.key ?? tls.key;
    if (this.dispatcher && this.dispatcher.cert === cert && this.dispatcher.key === key) return this.dispatcher.agent;
    const retired = this.dispatcher?.agent;
    // Calls still running on the old agent get their usual time to finish; a watch there is cut and
    // reopened by its informer, now with the new certificate.
    if (retired) setTimeout(() => retired.destroy(), REQUEST_TIMEOUT_MS).unref();
    const options = { keepAlive: true, keepAliveMsecs: TCP_KEEPALIVE_MS, maxSockets: MAX_CONNECTIONS };
    const proxy = this.connection.proxy;
    const Base = this.secure ? HttpsAgent : http.Agent;
    const Agent = proxy ? tunnelling(Base, proxy, this.secure) : Base;
    const agent = this.secure
      ? new Agent({
          ...options,
          ca: tls.ca,
          cert,
          key,
          rejectUnauthorized: tls.rejectUnauthorized,
          ...(tls.servername !== undefined && { servername: tls.servername }),
        })
      : new Agent(options);
    this.dispatcher = { agent, cert, key };
    return agent;
  }

  private record(record: RequestRecord): void {
    for (const observer of this.observers) observer(record);
  }
}

type AgentClass = new (options: AgentOptions) => HttpAgent;
type ConnectOptions = TlsConnectionOptions & { host: string; port: number };

/**
 * The agent, connecting through `proxy`: each new connection is first tunnelled to the API server, and
 * TLS (for https) runs inside the tunnel, so keep-alive and certificates work as they do without one.
 */
function tunnelling(Base: AgentClass, proxy: URL, secure: boolean): AgentClass {
  return class extends Base {
    override createConnection(options: ConnectOptions, callback: (error: Error | null, socket?: Duplex) => void): undefined {
      tunnel(proxy, options.host, options.port).then(
        (socket) => callback(null, secure ? tlsConnect({ ...options, socket }) : socket),
        (error: Error) => callback(error),
      );
      return undefined;
    }
  };
}

function describe(error: unknown): string {
  // A proxy's refusal says which proxy and why; its code alone would not.
  if (error instanceof KubeError) return error.message;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  return error instanceof Error ? error.message : String(error);
}
