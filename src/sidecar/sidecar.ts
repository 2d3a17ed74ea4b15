// `startSidecar()`: the proxy on 127.0.0.1 only (anything that could reach it could spend the pod's
// credentials), the admin server, the integrations table and its file watch. Used by
// `breakwater sidecar`, by the tests and by the benchmark, in-process.
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { DATA_DIR, DELIVERIES_PATH, PROXY_HOST, proxyBaseUrl } from '../api/names.ts';
import { parseStoreUrl } from '../delivery/open.ts';
import { startAdminServer, type AdminServer } from '../runtime/admin-server.ts';
import { createRegistry } from '../runtime/metrics.ts';
import { ConfigError, IntegrationTable, readConfig } from './config.ts';
import { watchConfig, type ConfigWatcher } from './config-watcher.ts';
import { toErrorResponse, writeRawError } from './error-response.ts';
import { Deliveries, prefersAsync } from './deliveries.ts';
import { startFleetReporter } from './fleet-report.ts';
import { fleetShares, fleetSnapshot } from './fleet-snapshot.ts';
import { closeExchange, forward, type ForwardContext } from './forward.ts';
import { SidecarMetrics } from './metrics.ts';
import { SIDECAR_DEFAULTS, type SidecarOptions } from './options.ts';
import { route } from './router.ts';

/** Distinct unknown names logged between two config loads. */
const MAX_UNKNOWN_LOGGED = 32;

export interface Sidecar {
  readonly port: number;
  readonly adminPort: number;
  /** Names of the integrations in service. */
  integrations(): string[];
  /** Stops accepting, waits for calls in flight (at most `timeoutMs`), then releases everything. */
  drain(timeoutMs: number): Promise<void>;
}

export async function startSidecar(options: SidecarOptions): Promise<Sidecar> {
  const logger = options.logger;
  const registry = options.registry ?? createRegistry();
  const metrics: SidecarMetrics = new SidecarMetrics(registry, () => table.circuitStates());
  const table: IntegrationTable = new IntegrationTable({
    ...(options.integrations && { only: new Set(options.integrations) }),
    secretsDir: options.secretsDir,
    secretPollMs: options.secretPollMs ?? SIDECAR_DEFAULTS.secretPollMs,
    maxConnectionsPerUpstream: options.maxConnectionsPerUpstream ?? SIDECAR_DEFAULTS.maxConnectionsPerUpstream,
    logger,
    metrics,
    policy: options.policy ?? {},
  });
  // A config that does not load at startup is the operator's mistake to see at once: nothing binds.
  // Kept to tell a change of content from the directory events of unrelated files.
  let lastText: string | undefined;
  try {
    lastText = await readConfig(options.configPath);
    table.load(options.configPath, lastText ?? '');
  } catch (error) {
    metrics.configReloads.inc({ result: 'failure' });
    throw error;
  }
  metrics.configReloads.inc({ result: 'success' });
  if (lastText === undefined) logger.warn({ config: options.configPath }, 'config file does not exist yet; serving no integration until it does');
  else logger.info({ config: options.configPath, integrations: table.names() }, 'config loaded');

  const context: ForwardContext = {
    limits: {
      retryBufferBytes: options.retryBufferBytes ?? SIDECAR_DEFAULTS.retryBufferBytes,
      maxRequestBodyBytes: options.maxRequestBodyBytes ?? SIDECAR_DEFAULTS.maxRequestBodyBytes,
    },
    logSampleRate: options.logSampleRate ?? SIDECAR_DEFAULTS.logSampleRate,
  };
  const deliveries = new Deliveries({
    location: parseStoreUrl(options.deliveryStore ?? SIDECAR_DEFAULTS.deliveryStore, options.dataDir ?? DATA_DIR, options.deliveryStorePassword),
    table,
    metrics: metrics.delivery,
    logger,
    limits: context.limits,
    ...(options.policy?.random && { random: options.policy.random }),
  });
  deliveries.sync();

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
    void forward(req, res, integration, target, context);
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
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, PROXY_HOST, () => {
      server.off('error', reject);
      resolve();
    });
  });

  let admin: AdminServer;
  try {
    admin = await startAdminServer({
      host: options.adminHost ?? '0.0.0.0',
      port: options.adminPort,
      registry,
      // An unreadable credential fails that integration's calls (credentials_unavailable), not the
      // pod: a Secret added to the namespace later must not take every running pod out of its Service.
      notReadyReason: () => (draining ? 'draining' : undefined),
    });
  } catch (error) {
    server.close();
    await deliveries.drain(0);
    table.close();
    throw error;
  }

  const location = parseStoreUrl(options.deliveryStore ?? SIDECAR_DEFAULTS.deliveryStore, options.dataDir ?? DATA_DIR);
  const reporter =
    options.report &&
    startFleetReporter({
      ...options.report,
      sharedStore: location.kind !== 'sqlite',
      snapshot: fleetSnapshot(registry, table, options.secretsDir),
      applyShares: fleetShares(table),
      logger,
    });

  // The directory also changes for unrelated files (and kubelet's temp entries), and a file caught
  // mid-replace cannot be read: only new content is loaded, and the next event brings the rest.
  const reloadIfChanged = async (): Promise<void> => {
    const text = await readFile(options.configPath, 'utf8').catch(() => undefined);
    if (text === undefined || text === lastText) return;
    lastText = text;
    try {
      table.load(options.configPath, text);
    } catch (error) {
      metrics.configReloads.inc({ result: 'failure' });
      logger.error(
        { config: options.configPath, problems: error instanceof ConfigError ? error.problems : [(error as Error).message] },
        'config rejected; the previous one stays in service',
      );
      return;
    }
    metrics.configReloads.inc({ result: 'success' });
    unknownLogged.clear();
    deliveries.sync();
    logger.info({ config: options.configPath, integrations: table.names() }, 'config reloaded');
  };
  const watcher: ConfigWatcher = watchConfig(
    options.configPath,
    options.configDebounceMs ?? SIDECAR_DEFAULTS.configDebounceMs,
    () => {
      void reloadIfChanged();
    },
    (error) => logger.error({ err: error }, 'config watch failed; changes will not be picked up'),
  );

  const drain = async (timeoutMs: number): Promise<void> => {
    if (draining) return;
    draining = true;
    watcher.close();
    server.close();
    server.closeIdleConnections();
    // The last report (leaving) goes out while calls in flight finish.
    const reported = reporter?.stop();
    if (inFlight > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => {
          idle = resolve;
        }),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, timeoutMs);
        }),
      ]);
      clearTimeout(timer);
      if (inFlight > 0) logger.warn({ inFlight }, 'drain timed out; closing calls still in flight');
    }
    server.closeAllConnections();
    // Deliveries in flight get the same grace as calls; what is left goes back to the store.
    await deliveries.drain(timeoutMs);
    await reported;
    table.close();
    await admin.close();
  };

  return {
    port: (server.address() as AddressInfo).port,
    adminPort: admin.port,
    integrations: () => table.names(),
    drain,
  };
}
