// The proxy's HTTP server, on 127.0.0.1 only (anything that could reach it could spend the pod's
// credentials): it routes each request to its integration, answers what it cannot route (and requests
// Node could not parse) itself, counts the calls in flight, and drains them on shutdown.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { DELIVERIES_PATH, PROXY_HOST, proxyBaseUrl } from '../api/names.ts';
import { listen } from '../runtime/listen.ts';
import type { Logger } from '../runtime/logger.ts';
import type { IntegrationTable } from './config.ts';
import { prefersAsync, type Deliveries } from './deliveries.ts';
import { toErrorResponse, writeRawError } from './error-response.ts';
import { closeExchange, forward, type ForwardContext } from './forward.ts';
import type { SidecarMetrics } from './metrics.ts';
import { route } from './router.ts';

// node:http as CommonJS, not as an ES module: see eslint.config.js.
const { createServer } = process.getBuiltinModule('node:http');

/** Distinct unknown names logged between two config loads. */
const MAX_UNKNOWN_LOGGED = 32;

export interface ProxyServerOptions {
  readonly port: number;
  readonly table: IntegrationTable;
  readonly deliveries: Deliveries;
  readonly context: ForwardContext;
  readonly metrics: SidecarMetrics;
  readonly logger: Logger;
}

export interface ProxyServer {
  readonly port: number;
  /** Stopping: no new connections, and the answers in flight say `connection: close`. */
  readonly draining: boolean;
  /** A new config is in service: an unknown name is worth one log line again. */
  configChanged(): void;
  /** Stops accepting, waits until `deadline` (Date.now) at most for the calls in flight, then cuts the rest. */
  drain(deadline: number): Promise<void>;
}

export async function startProxyServer(options: ProxyServerOptions): Promise<ProxyServer> {
  const { table, deliveries, context, metrics, logger } = options;
  const unknownLogged = new Set<string>();
  let inFlight = 0;
  let idle: (() => void) | undefined;
  let draining = false;
  function onClose(this: ServerResponse): void {
    closeExchange(this);
    if (--inFlight === 0) idle?.();
  }

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    inFlight++;
    res.on('close', onClose);
    if (draining) res.setHeader('connection', 'close');
    if (req.url?.startsWith(DELIVERIES_PATH)) {
      void deliveries.serveStatus(req, res, req.url);
      return;
    }
    const target = route(req.url);
    if (!target.ok) {
      toErrorResponse(res, { code: 'bad_request', message: target.message }, { name: '', attempts: 0 });
      return;
    }
    const integration = table.get(target.name);
    if (integration === undefined) {
      const message = table.whyUnknown(target.name);
      metrics.unknownIntegration.inc();
      // Once per name until the next config load: an app that calls a misspelt name in a loop must not
      // flood the log, and the name's set of the log stays bounded.
      if (!unknownLogged.has(target.name) && unknownLogged.size < MAX_UNKNOWN_LOGGED) {
        unknownLogged.add(target.name);
        logger.warn({ integration: target.name }, `answered 404 unknown_integration: ${message}`);
      }
      toErrorResponse(res, { code: 'unknown_integration', message }, { name: target.name, attempts: 0 });
      return;
    }
    if (integration.spec.delivery && prefersAsync(req.headers.prefer)) {
      void deliveries.accept(req, res, integration, target.rest);
      return;
    }
    forward(req, res, integration, target, context);
  });
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    // A caller that hung up (reset, or closed its side mid-request, e.g. after reading an early 413)
    // is not waiting for an answer.
    if (!socket.writable || error.code === 'ECONNRESET' || error.code === 'HPE_INVALID_EOF_STATE') {
      socket.destroy();
      return;
    }
    writeRawError(socket, { code: 'bad_request', message: `malformed HTTP request: ${error.code ?? error.message}` });
  });
  // Node hands a CONNECT to this event, never to the request handler, and without a listener it
  // closes the connection without a word. The proxy serves paths, not tunnels.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    const base = proxyBaseUrl((server.address() as AddressInfo).port);
    writeRawError(socket, { code: 'bad_request', message: `CONNECT is not proxied: call ${base}/<integration>/<path> over plain HTTP instead` });
  });
  await listen(server, options.port, PROXY_HOST);

  return {
    port: (server.address() as AddressInfo).port,
    get draining() {
      return draining;
    },
    configChanged: () => unknownLogged.clear(),
    async drain(deadline) {
      if (draining) return;
      draining = true;
      server.close();
      server.closeIdleConnections();
      if (inFlight > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          new Promise<void>((resolve) => {
            idle = resolve;
          }),
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
          }),
        ]);
        clearTimeout(timer);
        if (inFlight > 0) logger.warn({ inFlight }, 'drain timed out; closing calls still in flight');
      }
      server.closeAllConnections();
    },
  };
}
