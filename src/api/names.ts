// Every name a user or another component can see: API identity, ports, annotations, labels, env vars,
// mount paths. Written once here; the operator, the sidecar, the chart generator and the docs read them.

export const GROUP = 'breakwater.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'ExternalIntegration';
export const LIST_KIND = 'ExternalIntegrationList';
export const PLURAL = 'externalintegrations';
export const SINGULAR = 'externalintegration';
export const SHORT_NAMES = ['xi'] as const;
export const CRD_NAME = `${PLURAL}.${GROUP}`;

export const PROXY_HOST = '127.0.0.1';
export const PROXY_PORT = 15080;
export const SIDECAR_ADMIN_PORT = 15090;
export const OPERATOR_ADMIN_PORT = 8080;
export const WEBHOOK_PORT = 9443;

export const CONFIG_MAP_NAME = 'breakwater-integrations';
export const CONFIG_KEY = 'integrations.yaml';
export const CONFIG_DIR = '/etc/breakwater/config';
export const CONFIG_PATH = `${CONFIG_DIR}/${CONFIG_KEY}`;
export const SECRETS_DIR = '/etc/breakwater/secrets';

export const ANNOTATION_INJECT = `${GROUP}/inject`;
export const ANNOTATION_INTEGRATIONS = `${GROUP}/integrations`;
export const ANNOTATION_STATUS = `${GROUP}/status`;
export const ANNOTATION_SIDECAR_CPU = `${GROUP}/sidecar-cpu`;
export const ANNOTATION_SIDECAR_MEMORY = `${GROUP}/sidecar-memory`;
export const ANNOTATION_SIDECAR_MEMORY_LIMIT = `${GROUP}/sidecar-memory-limit`;
export const ANNOTATION_CONFIG_HASH = `${GROUP}/config-hash`;
export const LABEL_INJECTION = `${GROUP}/injection`;
/** Value of LABEL_INJECTION on a namespace whose pods all get the sidecar. */
export const INJECTION_ENABLED = 'enabled';
/** Pod annotation values; anything else is neither an opt-in nor an opt-out. */
export const INJECT_TRUE = 'true';
export const INJECT_FALSE = 'false';

export const SIDECAR_CONTAINER_NAME = 'breakwater';
/** `breakwater sidecar --integrations` value: every integration in the config file, now or later. */
export const ALL_INTEGRATIONS = '*';
/** The CLI inside the image and the subcommand that runs the proxy. */
export const SIDECAR_COMMAND = ['breakwater', 'sidecar'] as const;
/** Non-root user and group the sidecar runs as (the image's user). */
export const SIDECAR_UID = 65532;
export const SIDECAR_ADMIN_PORT_NAME = 'bw-admin';
export const CONFIG_VOLUME_NAME = 'breakwater-config';
export const SECRET_VOLUME_PREFIX = 'bw-secret-';
export const HEALTH_PATH = '/healthz';
export const READY_PATH = '/readyz';
export const METRICS_PATH = '/metrics';
/** Response header: how many times the sidecar sent the call to the vendor. */
export const ATTEMPTS_HEADER = 'x-breakwater-attempts';
/** Response header on a served fallback: the error it stands in for (circuit_open, …). */
export const FALLBACK_HEADER = 'x-breakwater-fallback';

/** Durable delivery: GET on the proxy port at this path plus an id shows that delivery. */
export const DELIVERIES_PATH = '/_breakwater/deliveries/';
/** Request header: deliveries with the same value go one at a time, in submission order. */
export const ORDERING_KEY_HEADER = 'breakwater-ordering-key';
/** Where `sqlite:` keeps its file when no path is given; an emptyDir in a pod. */
export const DATA_DIR = '/var/lib/breakwater';
export const SQLITE_FILE = 'deliveries.sqlite';
/** The sidecar's --delivery-store when the chart names a shared store (delivery.redis.url). */
export const ENV_DELIVERY_STORE = 'BREAKWATER_DELIVERY_STORE';
/** The shared store's password, from a Secret in the pod's namespace: never on a command line. */
export const ENV_DELIVERY_STORE_PASSWORD = 'BREAKWATER_DELIVERY_STORE_PASSWORD';
/** The injected sidecar's emptyDir at DATA_DIR: the root filesystem is read-only. */
export const DATA_VOLUME_NAME = 'breakwater-data';

/** Admission webhook: where the API server sends Pod CREATEs, and the objects that register it. */
export const WEBHOOK_PATH = '/mutate-pods';
export const WEBHOOK_NAME = `inject.${GROUP}`;
export const WEBHOOK_CONFIGURATION_NAME = 'breakwater';
export const WEBHOOK_SERVICE_NAME = 'breakwater-webhook';
/** Secret in the operator's namespace holding the webhook CA and serving certificate. */
export const WEBHOOK_CERT_SECRET_NAME = 'breakwater-webhook-certs';
/** Field manager for everything the operator writes. */
export const FIELD_MANAGER = 'breakwater-operator';
/**
 * Recommended labels on every object the operator creates, so that
 * `kubectl get configmaps,secrets,leases -A -l app.kubernetes.io/managed-by=breakwater-operator` finds them.
 */
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const LABEL_PART_OF = 'app.kubernetes.io/part-of';
export const LABEL_COMPONENT = 'app.kubernetes.io/component';
/** LABEL_COMPONENT values. */
export const COMPONENT_SIDECAR_CONFIG = 'sidecar-config';
export const COMPONENT_WEBHOOK_CERTIFICATE = 'webhook-certificate';
export const COMPONENT_LEADER_ELECTION = 'leader-election';

export function managedLabels(component: string): Record<string, string> {
  return { [LABEL_MANAGED_BY]: FIELD_MANAGER, [LABEL_PART_OF]: 'breakwater', [LABEL_COMPONENT]: component };
}
/** The Lease the operator's replicas compete for; only its holder reconciles. */
export const LEASE_NAME = 'breakwater-operator';
/** `reportingController` of the Events the operator records. */
export const EVENT_REPORTING_CONTROLLER = `${GROUP}/operator`;
/** The status condition of an ExternalIntegration, and its reasons (also the reasons of its Events). */
export const CONDITION_READY = 'Ready';
export const REASON_CONFIGURED = 'Configured';
export const REASON_INVALID_SPEC = 'InvalidSpec';
export const REASON_SECRET_NOT_FOUND = 'SecretNotFound';
/** The namespace's integrations do not fit in one ConfigMap: nothing new reaches its sidecars. */
export const REASON_CONFIG_TOO_LARGE = 'ConfigTooLarge';
/** Reasons of the Warning Events the webhook records on a pod's controller (admission warnings are not seen there). */
export const REASON_SIDECAR_NOT_INJECTED = 'SidecarNotInjected';
export const REASON_INJECTED_WITH_WARNINGS = 'InjectedWithWarnings';
/** `action` of those Events. */
export const EVENT_ACTION_ADMIT = 'Admit';
/** The fleet view: sidecars report their per-integration state to the operator, which writes it into the status. */
export const CONDITION_VENDOR_HEALTHY = 'VendorHealthy';
/** VendorHealthy reasons, also the reasons of the Events on fleet transitions. */
export const REASON_CIRCUIT_CLOSED = 'CircuitClosed';
export const REASON_CIRCUIT_OPEN = 'CircuitOpen';
/** VendorHealthy only: the pods' breakers are open because circuitBreaker.forceOpen holds them, not because the vendor failed. */
export const REASON_CIRCUIT_FORCED_OPEN = 'CircuitForcedOpen';
export const REASON_NO_REPORTS = 'NoReports';
/** Served on the webhook's HTTPS port (and Service): sidecars POST their reports here. */
export const REPORT_PATH = '/fleet/v1/reports';
/** Audience of the projected ServiceAccount token a sidecar reports with; the API server accepts it for nothing else. */
export const REPORT_TOKEN_AUDIENCE = `${GROUP}/fleet`;
export const REPORT_TOKEN_VOLUME_NAME = 'breakwater-token';
export const REPORT_TOKEN_DIR = '/var/run/secrets/breakwater.dev/fleet';
export const REPORT_TOKEN_PATH = `${REPORT_TOKEN_DIR}/token`;
/** kubelet renews a projected token at 80% of its life; an hour keeps renewals rare. */
export const REPORT_TOKEN_EXPIRATION_SECONDS = 3600;
/** The sidecar's --report-url; the PEM the operator's certificate chains to comes in ENV_REPORT_CA. */
export const ENV_REPORT_URL = 'BREAKWATER_REPORT_URL';
export const ENV_REPORT_CA = 'BREAKWATER_REPORT_CA';
/** LABEL_COMPONENT of the per-pod records (Leases in the operator's namespace) that carry the last report. */
export const COMPONENT_FLEET_REPORT = 'fleet-report';
/** Labels and annotations of those records. */
export const LABEL_POD_NAMESPACE = `${GROUP}/pod-namespace`;
export const ANNOTATION_POD_NAME = `${GROUP}/pod-name`;
export const ANNOTATION_REPORT = `${GROUP}/report`;
export const ENV_PREFIX = 'BREAKWATER_';
/** Base URL of the proxy, set in every app container next to the per-integration variables. */
export const ENV_PROXY_URL = `${ENV_PREFIX}URL`;

/** Resource names double as a URL path segment and part of an env var name, so they are DNS-1123 labels. */
export const INTEGRATION_NAME_PATTERN = '^[a-z]([-a-z0-9]*[a-z0-9])?$';
export const INTEGRATION_NAME_MAX_LENGTH = 63;

export function proxyBaseUrl(port: number = PROXY_PORT): string {
  return `http://${PROXY_HOST}:${port}`;
}

/** The URL an app uses for one integration: `http://127.0.0.1:15080/stripe`. */
export function integrationUrl(name: string, port: number = PROXY_PORT): string {
  return `${proxyBaseUrl(port)}/${name}`;
}

/** `fan-courier` → `BREAKWATER_FAN_COURIER_URL`. */
export function integrationEnvVar(name: string): string {
  return `${ENV_PREFIX}${name.toUpperCase().replaceAll('-', '_')}_URL`;
}

/** A CLI flag's environment variable: `admin-port` → `BREAKWATER_ADMIN_PORT`. */
export function flagEnvVar(flag: string): string {
  return `${ENV_PREFIX}${flag.toUpperCase().replaceAll('-', '_')}`;
}
