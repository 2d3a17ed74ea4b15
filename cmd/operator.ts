// `breakwater operator`: reconciles ExternalIntegrations into each namespace's sidecar ConfigMap and
// status, and the sidecars' reports into the fleet view, under a leader Lease; serves the webhook, the
// report endpoint, /metrics, /healthz and /readyz on every replica.
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { formatDuration } from '../src/api/duration.ts';
import { isRedisUrl, redact } from '../src/delivery/location.ts';
import { COMPONENT_LEADER_ELECTION, LEASE_NAME, OPERATOR_ADMIN_PORT, WEBHOOK_PORT, WEBHOOK_SERVICE_NAME } from '../src/api/names.ts';
import { KubeClient } from '../src/kube/client.ts';
import { KubeError } from '../src/kube/errors.ts';
import { SERVICE_ACCOUNT_DIR } from '../src/kube/kubeconfig.ts';
import { ownedByService } from '../src/kube/owner.ts';
import {
  addFleetController,
  addIntegrationController,
  admissionWebhook,
  adminServer,
  createOperatorMetrics,
  DEFAULT_CERT_VALIDITY_MS,
  fleetRecords,
  fleetReportHandler,
  LEADER_ELECTION_DEFAULTS,
  Manager,
  SIDECAR_MODES,
  SIDECAR_RESOURCES,
  type Runnable,
} from '../src/operator/index.ts';
import { parseFlags, UsageError, usage, type FlagSpec } from '../src/runtime/flags.ts';
import { ListenError } from '../src/runtime/listen.ts';
import { createLogger, LOG_LEVELS } from '../src/runtime/logger.ts';
import { createRegistry } from '../src/runtime/metrics.ts';
import { waitForShutdown } from '../src/runtime/shutdown.ts';
import { VERSION } from '../src/runtime/version.ts';

const FALLBACK_NAMESPACE = 'breakwater-system';
const SHUTDOWN_GRACE_MS = 10_000;

const FLAGS = {
  kubeconfig: { type: 'string', default: '', description: 'kubeconfig file (default: in-cluster, then $KUBECONFIG)' },
  namespace: {
    type: 'string',
    default: '',
    description: `the operator's own namespace, for its Lease and certificate Secret (default: the pod's, else ${FALLBACK_NAMESPACE})`,
  },
  'admin-port': { type: 'port', default: OPERATOR_ADMIN_PORT, description: '/metrics, /healthz and /readyz' },
  'webhook-port': { type: 'port', default: WEBHOOK_PORT, description: 'the admission webhook (HTTPS)' },
  'leader-elect': { type: 'boolean', default: true, description: 'reconcile only while holding the leader Lease' },
  'lease-duration': {
    type: 'duration',
    default: formatDuration(LEADER_ELECTION_DEFAULTS.leaseDurationMs),
    description: 'how long a silent leader keeps the Lease before a standby may take it',
  },
  'renew-deadline': {
    type: 'duration',
    default: formatDuration(LEADER_ELECTION_DEFAULTS.renewDeadlineMs),
    description: 'a leader that cannot renew for this long stops reconciling',
  },
  'retry-period': {
    type: 'duration',
    default: formatDuration(LEADER_ELECTION_DEFAULTS.retryPeriodMs),
    description: 'how often the leader renews and standbys try to take the Lease',
  },
  'watch-timeout': { type: 'duration', default: '5m', description: 'each watch is re-opened after between this and twice this' },
  'sidecar-image': {
    type: 'string',
    default: `ghcr.io/breakwater-dev/breakwater:${VERSION}`,
    description: 'image of the injected sidecar',
  },
  'webhook-url': {
    type: 'string',
    default: '',
    description: 'outside a cluster: register the webhook by this URL (e.g. https://127.0.0.1:9443) instead of by Service',
  },
  'webhook-cert-dir': {
    type: 'string',
    default: '',
    description: 'serve tls.crt/tls.key from this folder (cert-manager) instead of making and rotating our own',
  },
  'cert-validity': { type: 'duration', default: `${DEFAULT_CERT_VALIDITY_MS / 3_600_000}h`, description: 'validity of the self-managed webhook certificate; renewed with a third left' },
  'sidecar-mode': {
    type: 'string',
    default: 'auto',
    choices: SIDECAR_MODES,
    description: 'how the sidecar is injected; auto injects a native sidecar from Kubernetes 1.29',
  },
  'sidecar-cpu': { type: 'string', default: SIDECAR_RESOURCES.cpu, description: 'sidecar CPU request (pod annotation breakwater.dev/sidecar-cpu overrides)' },
  'sidecar-memory': { type: 'string', default: SIDECAR_RESOURCES.memory, description: 'sidecar memory request (breakwater.dev/sidecar-memory overrides)' },
  'sidecar-memory-limit': {
    type: 'string',
    default: SIDECAR_RESOURCES.memoryLimit,
    description: 'sidecar memory limit (breakwater.dev/sidecar-memory-limit overrides)',
  },
  'sidecar-log-level': { type: 'string', default: 'info', choices: LOG_LEVELS, description: 'the injected sidecar\'s --log-level' },
  'delivery-store': {
    type: 'string',
    default: '',
    description: 'a delivery store every injected sidecar shares (redis://HOST:PORT); none: each keeps a sqlite: file on an emptyDir',
  },
  'delivery-store-password-secret': {
    type: 'string',
    default: '',
    description: "the store's password: a Secret of this name in each app pod's namespace, mounted into the sidecar only",
  },
  'delivery-store-password-key': { type: 'string', default: 'password', description: 'the key of that Secret' },
  'log-level': { type: 'string', default: 'info', choices: LOG_LEVELS, description: 'least severe level logged' },
} satisfies Record<string, FlagSpec>;

function ownNamespace(flag: string): string {
  if (flag) return flag;
  try {
    return readFileSync(join(SERVICE_ACCOUNT_DIR, 'namespace'), 'utf8').trim() || FALLBACK_NAMESPACE;
  } catch {
    return FALLBACK_NAMESPACE;
  }
}

export async function operator(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseFlags(FLAGS, argv);
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}\n\n${usage('operator', FLAGS)}`);
  const election = {
    leaseDurationMs: values['lease-duration'],
    renewDeadlineMs: values['renew-deadline'],
    retryPeriodMs: values['retry-period'],
  };
  if (!(election.retryPeriodMs < election.renewDeadlineMs && election.renewDeadlineMs < election.leaseDurationMs)) {
    throw new UsageError('--retry-period < --renew-deadline < --lease-duration must hold');
  }
  // Checked here, not by each sidecar it is injected into: a typo would crash-loop every pod.
  const store = values['delivery-store'];
  if (store !== '' && !isRedisUrl(store)) {
    throw new UsageError(`--delivery-store is the store every injected sidecar shares: redis://[:PASSWORD@]HOST:PORT[/DB] or rediss://…, got ${JSON.stringify(redact(store))}`);
  }
  const logger = createLogger({ level: values['log-level'], name: 'breakwater-operator' });
  const namespace = ownNamespace(values.namespace);
  const identity = `${hostname()}_${randomUUID()}`;
  const registry = createRegistry();
  const metrics = createOperatorMetrics(registry);
  let client: KubeClient;
  try {
    client = new KubeClient({ kubeconfig: values.kubeconfig || undefined, userAgent: `breakwater-operator/${VERSION}` });
  } catch (error) {
    if (error instanceof KubeError && error.code === 'no_config') throw new UsageError(error.message);
    throw error;
  }

  // Replica-wide runnables: every replica serves them, leader or not. The admission webhook joins here.
  const runnables: Runnable[] = [];
  const manager = new Manager({
    client,
    logger,
    metrics,
    runnables,
    ...(values['leader-elect'] && {
      leaderElection: {
        lease: { namespace, name: LEASE_NAME, metadata: ownedByService(client, namespace, WEBHOOK_SERVICE_NAME, COMPONENT_LEADER_ELECTION) },
        identity,
        ...election,
      },
    }),
  });
  runnables.push(
    adminServer({ host: '0.0.0.0', port: values['admin-port'], registry, logger, notReadyReason: () => manager.notReadyReason() }),
  );
  const informer = { watchTimeoutSeconds: Math.max(1, Math.round(values['watch-timeout'] / 1000)) };
  addIntegrationController(manager, { logger, metrics, identity, informer });
  addFleetController(manager, { namespace, logger, metrics, identity, informer });
  runnables.push(
    admissionWebhook(manager, {
      namespace,
      port: values['webhook-port'],
      url: values['webhook-url'] || undefined,
      certDir: values['webhook-cert-dir'] || undefined,
      certValidityMs: values['cert-validity'],
      sidecar: {
        image: values['sidecar-image'],
        mode: values['sidecar-mode'],
        cpu: values['sidecar-cpu'],
        memory: values['sidecar-memory'],
        memoryLimit: values['sidecar-memory-limit'],
        logLevel: values['sidecar-log-level'],
        version: VERSION,
        ...(values['delivery-store'] && {
          deliveryStore: {
            url: values['delivery-store'],
            ...(values['delivery-store-password-secret'] && {
              passwordSecret: { name: values['delivery-store-password-secret'], key: values['delivery-store-password-key'] },
            }),
          },
        }),
      },
      informer,
      identity,
      logger,
      registry,
      fleetReports: fleetReportHandler({
        client,
        namespace,
        records: fleetRecords(manager, namespace, informer),
        logger: logger.child({ runnable: 'fleet-reports' }),
        registry,
      }),
    }),
  );

  logger.info({ version: VERSION, identity, namespace, server: client.transport.server, leaderElect: values['leader-elect'] }, 'starting operator');
  try {
    await manager.start();
  } catch (error) {
    if (!(error instanceof ListenError)) throw error;
    logger.error({ address: error.address, port: error.port, code: error.code }, error.message);
    await manager.stop();
    logger.flush();
    return 1;
  }
  return waitForShutdown({ logger, graceMs: SHUTDOWN_GRACE_MS, drain: () => manager.stop() });
}
