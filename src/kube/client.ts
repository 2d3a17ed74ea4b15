// The typed client: client-node's generated APIs, all sending through one Transport, plus the raw JSON
// requests the generated code cannot make (metadata-only lists, watches). Other parts of the operator
// reach any further API group with `client.api(SomeApi)`.
import { existsSync } from 'node:fs';
import {
  CoordinationV1Api,
  CoreV1Api,
  createConfiguration,
  CustomObjectsApi,
  EventsV1Api,
  KubeConfig,
  ServerConfiguration,
  type ApiConstructor,
  type ApiType,
  type Configuration,
} from '@kubernetes/client-node';
import type { Response } from 'undici';
import { KubeError, statusMessage } from './errors.ts';
import { Transport, type RequestObserver } from './transport.ts';

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export interface KubeClientOptions {
  /** A kubeconfig file. Without it: in-cluster service account, then $KUBECONFIG. */
  readonly kubeconfig?: string;
  /** Sent as User-Agent, so the API server's audit log and metrics name us. */
  readonly userAgent: string;
}

/** In-cluster first, then $KUBECONFIG, as docs/design.md's `--kubeconfig` promises; a given file wins. */
function loadKubeConfig(file?: string): KubeConfig {
  const kc = new KubeConfig();
  if (file) {
    try {
      kc.loadFromFile(file);
    } catch (error) {
      throw new KubeError(0, `cannot load kubeconfig ${file}: ${(error as Error).message}`, { code: 'no_config', cause: error });
    }
  } else if (process.env.KUBERNETES_SERVICE_HOST && existsSync(SERVICE_ACCOUNT_TOKEN)) kc.loadFromCluster();
  else if (process.env.KUBECONFIG) kc.loadFromDefault();
  else throw new KubeError(0, 'not in a cluster and no kubeconfig: pass --kubeconfig or set KUBECONFIG', { code: 'no_config' });
  return kc;
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
  readonly core: CoreV1Api;
  readonly customObjects: CustomObjectsApi;
  readonly coordination: CoordinationV1Api;
  readonly events: EventsV1Api;
  private readonly configuration: Configuration;

  constructor(options: KubeClientOptions) {
    this.transport = new Transport(loadKubeConfig(options.kubeconfig), options.userAgent);
    this.configuration = createConfiguration({
      baseServer: new ServerConfiguration(this.transport.server, {}),
      httpApi: this.transport.httpLibrary(),
      // Credentials are added by the transport; the kubeconfig as an auth method would build a new
      // undici Agent for every request.
      authMethods: {},
    });
    this.core = this.api(CoreV1Api);
    this.customObjects = this.api(CustomObjectsApi);
    this.coordination = this.api(CoordinationV1Api);
    this.events = this.api(EventsV1Api);
  }

  /** Any generated API class (AdmissionregistrationV1Api, …) on the shared transport. */
  api<T extends ApiType>(type: ApiConstructor<T>): T {
    return new type(this.configuration);
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
  stream(path: string, request: JsonRequest): Promise<Response> {
    return this.send('GET', path, request, true);
  }

  private async send(method: string, path: string, request: JsonBodyRequest, noTimeout: boolean): Promise<Response> {
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
