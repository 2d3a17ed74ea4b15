// `startSidecar()`: the integrations table, its config reloads, the proxy server, durable deliveries and
// the admin server, started in that order and drained in reverse. Used by `breakwater sidecar`, by the
// tests and by the benchmark, in-process.
import { DATA_DIR } from '../api/names.ts';
import { parseStoreUrl } from '../delivery/location.ts';
import { startAdminServer } from '../runtime/admin-server.ts';
import { createRegistry } from '../runtime/metrics.ts';
import { IntegrationTable } from './config.ts';
import { Deliveries } from './deliveries.ts';
import { startFleetReporter } from './fleet-report.ts';
import { fleetShares, fleetSnapshot } from './fleet-snapshot.ts';
import type { ForwardContext } from './forward.ts';
import { SidecarMetrics } from './metrics.ts';
import { SIDECAR_DEFAULTS, type SidecarOptions } from './options.ts';
import { ConfigReloader } from './reload.ts';
import { startProxyServer } from './server.ts';

export interface Sidecar {
  readonly port: number;
  readonly adminPort: number;
  /** Names of the integrations in service. */
  integrations(): string[];
  /** Stops accepting, waits for calls and deliveries in flight (at most `timeoutMs` in all), then releases everything. */
  drain(timeoutMs: number): Promise<void>;
}

export async function startSidecar(options: SidecarOptions): Promise<Sidecar> {
  const logger = options.logger;
  const registry = options.registry ?? createRegistry();
  const metrics: SidecarMetrics = new SidecarMetrics(registry, () => table.circuitStates());
  const location = parseStoreUrl(options.deliveryStore ?? SIDECAR_DEFAULTS.deliveryStore, options.dataDir ?? DATA_DIR, options.deliveryStorePassword);
  // The delivery store's Redis also holds rateLimit.scope global's buckets; it connects on first use.
  // Its client (some 500 modules) is loaded only for a redis:// store.
  const sharedLimits = location.kind === 'redis' ? new (await import('./redis-rate-limits.ts')).RedisRateLimits(location.url, location.password) : undefined;
  const table: IntegrationTable = new IntegrationTable({
    ...(options.integrations && { only: new Set(options.integrations) }),
    secretsDir: options.secretsDir,
    secretPollMs: options.secretPollMs ?? SIDECAR_DEFAULTS.secretPollMs,
    maxConnectionsPerUpstream: options.maxConnectionsPerUpstream ?? SIDECAR_DEFAULTS.maxConnectionsPerUpstream,
    logger,
    metrics,
    policy: options.policy ?? {},
    ...(sharedLimits && { sharedLimits }),
  });
  const closeTable = async () => {
    table.close();
    await sharedLimits?.close();
  };
  /** What has started so far, released in reverse order when a later step fails. */
  const started: (() => Promise<void>)[] = [closeTable];
  const failed = async (error: unknown): Promise<never> => {
    for (const release of started.reverse()) await release();
    throw error;
  };
  const reloader = new ConfigReloader({ configPath: options.configPath, table, metrics, logger });
  await reloader.loadFirst().catch(failed);

  const context: ForwardContext = {
    limits: {
      retryBufferBytes: options.retryBufferBytes ?? SIDECAR_DEFAULTS.retryBufferBytes,
      maxRequestBodyBytes: options.maxRequestBodyBytes ?? SIDECAR_DEFAULTS.maxRequestBodyBytes,
    },
    logSampleRate: options.logSampleRate ?? SIDECAR_DEFAULTS.logSampleRate,
  };
  const deliveries = new Deliveries({
    location,
    table,
    metrics: metrics.delivery,
    logger,
    limits: context.limits,
    ...(options.policy?.random && { random: options.policy.random }),
  });
  deliveries.sync();
  started.push(() => deliveries.drain(0));

  const server = await startProxyServer({ port: options.port, table, deliveries, context, metrics, logger }).catch(failed);
  started.push(() => server.drain(Date.now()));
  const admin = await startAdminServer({
    host: options.adminHost ?? '0.0.0.0',
    port: options.adminPort,
    registry,
    // An unreadable credential fails that integration's calls (credentials_unavailable), not the
    // pod: a Secret added to the namespace later must not take every running pod out of its Service.
    notReadyReason: () => (server.draining ? 'draining' : undefined),
  }).catch(failed);

  const reporter =
    options.report &&
    startFleetReporter({
      ...options.report,
      sharedStore: location.kind !== 'sqlite',
      snapshot: fleetSnapshot(registry, table),
      applyShares: fleetShares(table),
      logger,
    });

  reloader.watch(options.configDebounceMs ?? SIDECAR_DEFAULTS.configDebounceMs, () => {
    server.configChanged();
    deliveries.sync();
  });

  let drained: Promise<void> | undefined;
  const drain = async (timeoutMs: number): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    reloader.close();
    const served = server.drain(deadline);
    // The last report (leaving) goes out once the server stops accepting, while calls in flight finish.
    const reported = reporter?.stop();
    await served;
    // Deliveries in flight get what is left of the same grace; what is left of them goes back to the store.
    await deliveries.drain(Math.max(0, deadline - Date.now()));
    await reported;
    await closeTable();
    await admin.close();
  };

  return {
    port: server.port,
    adminPort: admin.port,
    integrations: () => table.names(),
    drain: (timeoutMs) => (drained ??= drain(timeoutMs)),
  };
}
