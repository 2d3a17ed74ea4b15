// /metrics, /healthz and /readyz for both programs. Nothing here reveals configuration or secrets: the
// admin port listens on the pod IP, where anyone in the cluster can reach it.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { HEALTH_PATH, METRICS_PATH, READY_PATH } from '../api/names.ts';
import { listen } from './listen.ts';

// node:http as CommonJS, not as an ES module: see eslint.config.js.
const { createServer } = process.getBuiltinModule('node:http');

export interface AdminServerOptions {
  readonly host: string;
  readonly port: number;
  readonly registry: Registry;
  /** Why the process is not ready, or undefined when it is. */
  readonly notReadyReason: () => string | undefined;
}

export interface AdminServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (path === HEALTH_PATH) {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === READY_PATH) {
      const reason = options.notReadyReason();
      res.writeHead(reason ? 503 : 200, { 'content-type': 'text/plain' }).end(reason ? `not ready: ${reason}\n` : 'ok\n');
    } else if (path === METRICS_PATH) {
      options.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': options.registry.contentType }).end(text),
        (error: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${error.message}\n`),
      );
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: try ${METRICS_PATH}, ${HEALTH_PATH} or ${READY_PATH}\n`);
    }
  });
  await listen(server, options.port, options.host);
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
