// The client every part of the operator talks to the API server through: JSON requests on any path,
// and streams for watches, all on one Transport. The wrappers beside this file (apply, lease, secrets,
// …) name the paths; there are no generated API classes.
import { KubeError, statusMessage } from './errors.ts';
import { loadConnection, loadUserConnection } from './kubeconfig.ts';
import { Transport, type ApiResponse, type RequestObserver } from './transport.ts';

export interface KubeClientOptions {
  /** A kubeconfig file. Without it: in-cluster service account, then $KUBECONFIG. */
  readonly kubeconfig?: string;
  /** Sent as User-Agent, so the API server's audit log and metrics name us. */
  readonly userAgent: string;
  /** `person`: kubectl's order (--kubeconfig, $KUBECONFIG, ~/.kube/config, then in-cluster), for the CLI. */
  readonly caller?: 'workload' | 'person';
}

export interface JsonRequest {
  readonly query?: Record<string, string | number | boolean | undefined>;
  readonly accept?: string;
  readonly signal?: AbortSignal;
  readonly verb?: string;
}

export interface JsonBodyRequest extends JsonRequest {
  /** Sent as JSON. */
  readonly body?: unknown;
  /** Defaults to application/json; a PATCH names its patch type here. */
  readonly contentType?: string;
}

export class KubeClient {
  readonly transport: Transport;
  /** The kubeconfig context's namespace, or the pod's own; undefined when neither names one. */
  readonly namespace: string | undefined;

  /** Throws KubeError `no_config` when there is no cluster to talk to or the kubeconfig is unusable. */
  constructor(options: KubeClientOptions) {
    const load = options.caller === 'person' ? loadUserConnection : loadConnection;
    const connection = load({ file: options.kubeconfig });
    this.transport = new Transport(connection, options.userAgent);
    this.namespace = connection.namespace;
  }

  observe(observer: RequestObserver): () => void {
    return this.transport.observe(observer);
  }

  /** GET `path` as JSON; a non-2xx answer becomes a KubeError with the API server's message. */
  getJson<T>(path: string, request: JsonRequest = {}): Promise<T> {
    return this.requestJson<T>('GET', path, request);
  }

  /**
   * Any verb on `path` with an optional JSON body (PATCH takes its patch type as `contentType`); the
   * answer is parsed as JSON, and a non-2xx answer becomes a KubeError with the API server's message.
   */
  async requestJson<T>(method: string, path: string, request: JsonBodyRequest = {}): Promise<T> {
    const response = await this.send(method, path, request, false);
    return JSON.parse(await response.text()) as T;
  }

  /** Opens a streaming GET (a watch); the caller reads and closes the body. */
  stream(path: string, request: JsonRequest): Promise<ApiResponse> {
    return this.send('GET', path, request, true);
  }

  private async send(method: string, path: string, request: JsonBodyRequest, noTimeout: boolean): Promise<ApiResponse> {
    const headers: Record<string, string> = { accept: request.accept ?? 'application/json' };
    if (request.body !== undefined) headers['content-type'] = request.contentType ?? 'application/json';
    const response = await this.transport.fetch(withQuery(path, request.query), {
      method,
      headers,
      body: request.body === undefined ? undefined : JSON.stringify(request.body),
      signal: request.signal,
      verb: request.verb,
      noTimeout,
    });
    if (response.status < 200 || response.status > 299) {
      throw new KubeError(response.status, `${method} ${path}: ${statusMessage(await response.text())}`);
    }
    return response;
  }

  close(): Promise<void> {
    return this.transport.close();
  }
}

function withQuery(path: string, query: JsonRequest['query']): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) if (value !== undefined) params.set(key, String(value));
  const text = params.toString();
  return text ? `${path}${path.includes('?') ? '&' : '?'}${text}` : path;
}
