// The Manager: the shared client and informer cache, and the runnables of the process in two groups,
// as controller-runtime groups them:
// - replica runnables (admin server, admission webhook) and the informers run on every replica;
// - controllers run only while this replica holds the leader Lease (or always, without election),
//   and only once every informer has listed, so a reconcile never acts on a half-filled cache.
// Readiness says whether this replica does its part: every informer synced, every replica runnable
// started and ready (so the webhook is served), and, on the leader, the controllers running.
import type { KubeClient } from '../kube/client.ts';
import { Informer, type InformerEvent, type InformerOptions, type NamedObject } from '../kube/informer.ts';
import type { ResourceType } from '../kube/resources.ts';
import { startAdminServer, type AdminServerOptions } from '../runtime/admin-server.ts';
import type { Logger } from '../runtime/logger.ts';
import type { Controller } from './controller.ts';
import { LeaderElector, type LeaderElectionOptions } from './leader-election.ts';
import type { OperatorMetrics } from './metrics.ts';

export interface Runnable {
  readonly name: string;
  /** Resolves once running; the result stops it. */
  start(): Promise<() => Promise<void>>;
  /** Why this runnable is not ready to serve, if it is not. */
  notReadyReason?(): string | undefined;
}

export type ElectionSettings = Pick<LeaderElectionOptions, 'lease' | 'identity' | 'leaseDurationMs' | 'renewDeadlineMs' | 'retryPeriodMs'>;

export interface ManagerOptions {
  readonly client: KubeClient;
  readonly logger: Logger;
  readonly metrics: OperatorMetrics;
  /** Without it this replica always leads (a single replica, or tests). */
  readonly leaderElection?: ElectionSettings;
  /** Runnables for every replica. The admission webhook joins here. */
  readonly runnables?: readonly Runnable[];
}

export class Manager {
  readonly client: KubeClient;
  private readonly options: ManagerOptions;
  private readonly informers = new Map<string, Informer<NamedObject>>();
  private readonly controllers: Controller[] = [];
  private readonly stops: (() => Promise<void>)[] = [];
  private readonly shutdown = new AbortController();
  private elector: LeaderElector | undefined;
  private running: Promise<void> | undefined;
  private leaderWork: Promise<void> | undefined;
  private readonly started = new Set<Runnable>();
  private reconciling = false;

  constructor(options: ManagerOptions) {
    this.client = options.client;
    this.options = options;
    options.client.observe(({ verb, status }) => options.metrics.apiRequests.inc({ verb, code: String(status) }));
  }

  /**
   * The shared informer for a resource (one per resource and options), started with the manager. The
   * webhook reads namespaces and integrations from here.
   */
  informer<T extends NamedObject>(resource: ResourceType, options: InformerOptions = {}): Informer<T> {
    const key = JSON.stringify([resource.group, resource.plural, resource.metadataOnly ?? false, options]);
    let informer = this.informers.get(key);
    if (!informer) {
      informer = new Informer<NamedObject>(this.client, resource, options);
      this.watchLifecycle(informer);
      this.informers.set(key, informer);
      if (this.running) informer.start();
    }
    // One informer per key, so the type the first caller chose is the type of the objects it holds.
    return informer as unknown as Informer<T>;
  }

  /** Runs only on the leader. */
  addController(controller: Controller): void {
    this.controllers.push(controller);
  }

  isLeader(): boolean {
    return this.elector ? this.elector.isLeader() : this.running !== undefined;
  }

  notReadyReason(): string | undefined {
    const unsynced = [...this.informers.values()].filter((i) => !i.hasSynced()).map((i) => i.resource.plural);
    if (unsynced.length > 0) return `informers not synced: ${unsynced.join(', ')}`;
    for (const runnable of this.options.runnables ?? []) {
      const reason = this.started.has(runnable) ? runnable.notReadyReason?.() : 'not started yet';
      if (reason) return `${runnable.name}: ${reason}`;
    }
    if (this.controllers.length > 0 && this.isLeader() && !this.reconciling) return 'leader, but the controllers are not running';
    return undefined;
  }

  /**
   * Starts the informers, then the election (so reconciling never waits for a replica runnable, such
   * as a webhook whose certificate is not published yet), then the replica runnables in order.
   */
  async start(): Promise<void> {
    const { logger } = this.options;
    for (const informer of this.informers.values()) informer.start();
    this.elect();
    for (const runnable of this.options.runnables ?? []) {
      this.stops.push(await runnable.start());
      this.started.add(runnable);
      logger.debug({ runnable: runnable.name }, 'started');
    }
  }

  private elect(): void {
    const { logger, leaderElection } = this.options;
    const stop = this.shutdown.signal;
    if (leaderElection) {
      this.elector = new LeaderElector({
        ...leaderElection,
        client: this.client,
        logger,
        onStartedLeading: (leading) => this.lead(leading),
        onStoppedLeading: () => this.options.metrics.leader.set(0),
      });
      this.running = this.elector.run(stop);
    } else {
      this.running = Promise.resolve();
      this.lead(stop);
    }
  }

  /** Stops controllers (releasing the Lease), then replica runnables, then informers. */
  async stop(): Promise<void> {
    this.shutdown.abort();
    await this.running;
    await this.leaderWork;
    for (const stop of this.stops.splice(0).reverse()) await stop();
    await Promise.all([...this.informers.values()].map((i) => i.stop()));
    await this.client.close();
  }

  private lead(leading: AbortSignal): void {
    this.options.metrics.leader.set(1);
    const previous = this.leaderWork ?? Promise.resolve();
    this.leaderWork = previous.then(async () => {
      await Promise.race([
        Promise.all([...this.informers.values()].map((i) => i.waitForSync())),
        new Promise((resolve) => leading.addEventListener('abort', resolve, { once: true })),
      ]);
      if (leading.aborted) return;
      this.options.logger.info({ controllers: this.controllers.map((c) => c.name) }, 'starting controllers');
      this.reconciling = true;
      try {
        await Promise.all(this.controllers.map((c) => c.run(leading)));
      } finally {
        this.reconciling = false;
      }
      this.options.logger.info('controllers stopped');
    });
  }

  private watchLifecycle(informer: Informer<NamedObject>): void {
    const { logger, metrics } = this.options;
    const resource = informer.resource.plural;
    informer.onLifecycle((event: InformerEvent) => {
      metrics.informerEvents.inc({ resource, event: event.type });
      switch (event.type) {
        case 'error':
          logger.warn({ resource, err: event.error, attempt: event.attempt, retryInMs: event.retryInMs }, 'list/watch failed; retrying');
          break;
        case 'expired':
          logger.info({ resource, resourceVersion: event.resourceVersion }, 'watch expired (410); re-listing');
          break;
        case 'stalled':
          logger.warn({ resource, silentMs: event.silentMs }, 'watch silent too long; reconnecting');
          break;
        case 'listed':
          logger.info({ resource, count: event.count, resourceVersion: event.resourceVersion }, 'listed');
          break;
        default:
          logger.debug({ resource, ...event }, `watch ${event.type}`);
      }
    });
  }
}

/** /metrics, /healthz and /readyz, on every replica. */
export function adminServer(options: AdminServerOptions & { readonly logger: Logger }): Runnable {
  return {
    name: 'admin-server',
    async start() {
      const server = await startAdminServer(options);
      options.logger.info({ address: `${options.host}:${server.port}` }, 'admin server listening');
      return () => server.close();
    },
  };
}
