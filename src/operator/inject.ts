// What the admission webhook does to a Pod, as a pure function: (pod, namespace, integrations in the
// namespace, settings) → a mutated copy, the reason for the outcome and any warnings for the user. It
// never throws for bad user input: a pod it cannot serve is returned unchanged with a reason, so a typo
// in an annotation never blocks a deploy. The webhook diffs the copy into a JSON Patch.
import { createHash } from 'node:crypto';
import type { V1Container, V1EnvVar, V1Namespace, V1Pod, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import type { SecretKeyRef } from '../api/resolve.ts';
import type { ExternalIntegration } from '../api/schema.ts';
import { secretRefs } from '../api/secret-refs.ts';
import {
  ALL_INTEGRATIONS,
  ANNOTATION_INJECT,
  ANNOTATION_INTEGRATIONS,
  ANNOTATION_SIDECAR_CPU,
  ANNOTATION_SIDECAR_MEMORY,
  ANNOTATION_SIDECAR_MEMORY_LIMIT,
  ANNOTATION_STATUS,
  CONFIG_DIR,
  CONFIG_MAP_NAME,
  CONFIG_PATH,
  CONFIG_VOLUME_NAME,
  DATA_DIR,
  DATA_VOLUME_NAME,
  ENV_DELIVERY_STORE,
  ENV_DELIVERY_STORE_PASSWORD,
  ENV_PROXY_URL,
  ENV_REPORT_CA,
  ENV_REPORT_URL,
  HEALTH_PATH,
  INJECT_FALSE,
  INJECT_TRUE,
  INJECTION_ENABLED,
  integrationEnvVar,
  integrationUrl,
  LABEL_INJECTION,
  PROXY_PORT,
  proxyBaseUrl,
  READY_PATH,
  REPORT_TOKEN_AUDIENCE,
  REPORT_TOKEN_DIR,
  REPORT_TOKEN_EXPIRATION_SECONDS,
  REPORT_TOKEN_VOLUME_NAME,
  SECRET_VOLUME_PREFIX,
  SECRETS_DIR,
  SIDECAR_ADMIN_PORT,
  SIDECAR_ADMIN_PORT_NAME,
  SIDECAR_COMMAND,
  SIDECAR_CONTAINER_NAME,
  SIDECAR_UID,
} from '../api/names.ts';
import type { ServerVersion } from '../kube/server-version.ts';

export const SIDECAR_MODES = ['auto', 'native', 'container'] as const;
export type SidecarMode = (typeof SIDECAR_MODES)[number];

/**
 * The sidecar's resources unless the operator is told otherwise. Measured with sidecarRuntimeEnv's
 * settings: about 80 MB resident idle, 105 MB at 1,000 calls/s and 120 MB at saturation (32
 * connections), so the request covers a steady pod and the limit a saturated one with headroom; below
 * the footprint the pod is OOMKilled in a loop. No CPU limit: throttling a proxy adds latency to every
 * call the app makes.
 */
export const SIDECAR_RESOURCES = { cpu: '50m', memory: '128Mi', memoryLimit: '256Mi' } as const;

/** The sidecar's V8 semi-spaces (each of the young generation's two halves), in MB. */
const SIDECAR_SEMI_SPACE_MB = 1;
/** The least old generation the sidecar is given, in MB, however low its memory limit. */
const SIDECAR_MIN_OLD_SPACE_MB = 64;
/** glibc malloc arenas the sidecar's threads share. */
const SIDECAR_MALLOC_ARENAS = 2;

/** Native sidecars (init containers with `restartPolicy: Always`) are on by default from this release. */
export const NATIVE_SIDECAR_SINCE = { major: 1, minor: 29 } as const;

export interface InjectSettings {
  readonly image: string;
  /** `auto` picks `native` when the API server is at least NATIVE_SIDECAR_SINCE, else `container`. */
  readonly mode: SidecarMode;
  readonly serverVersion: Pick<ServerVersion, 'major' | 'minor'>;
  /** CPU request; a pod may override it with the sidecar-cpu annotation. */
  readonly cpu: string;
  /** Memory request; a pod may override it with the sidecar-memory annotation. */
  readonly memory: string;
  /** Memory limit; a pod may override it with the sidecar-memory-limit annotation. */
  readonly memoryLimit: string;
  readonly logLevel: string;
  /** Breakwater release, recorded in the status annotation. */
  readonly version: string;
  /**
   * A delivery store every sidecar shares (redis://…) instead of each one's sqlite: file; its password
   * comes from a Secret of this name in the pod's own namespace (a pod can reference no other).
   */
  readonly deliveryStore?: { readonly url: string; readonly passwordSecret?: SecretKeyRef };
  /**
   * Where the sidecar reports its state for the fleet view (the operator's report endpoint), and the
   * CA bundle its certificate chains to, read at each admission so a rotated CA reaches new pods.
   */
  readonly report?: { readonly url: string; readonly caBundle: () => string | undefined };
}

/** What inject() reads of an ExternalIntegration: its name and the Secrets its spec references. */
export type NamespaceIntegration = Pick<ExternalIntegration, 'spec'> & { readonly metadata: { readonly name: string } };

export interface InjectInput {
  readonly pod: V1Pod;
  /** The pod's namespace as the API server has it; only its labels are read. */
  readonly namespace: V1Namespace | undefined;
  /** Every ExternalIntegration in the pod's namespace. */
  readonly integrations: readonly NamespaceIntegration[];
  readonly settings: InjectSettings;
}

export type SkipReason = 'already-injected' | 'opted-out' | 'not-selected' | 'no-integrations' | 'host-network' | 'runs-to-completion';

export interface InjectResult {
  /** A copy of the pod: mutated when injected, equal to the input otherwise. */
  readonly pod: V1Pod;
  readonly injected: boolean;
  /** `injected` or why not; bounded, so it can label a metric. */
  readonly reason: SkipReason | 'injected';
  readonly message: string;
  /** For the AdmissionResponse: things the user asked for that did not happen as asked. */
  readonly warnings: readonly string[];
}

/** What the status annotation records, as JSON. */
export interface InjectionStatus {
  readonly version: string;
  readonly sidecar: 'native' | 'container';
  readonly integrations: readonly string[];
}

interface Skip {
  readonly reason: SkipReason;
  readonly message: string;
  readonly warning?: string;
}

type Check = (input: InjectInput) => Skip | undefined;

// A Kubernetes resource quantity (k8s.io/apimachinery resource.Quantity); a bad override would make the
// API server reject the whole pod, so it is checked here and ignored with a warning.
const QUANTITY = /^[+]?(\d+(?:\.\d*)?|\.\d+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?$/;
const SUFFIX: Record<string, number> = {
  n: 1e-9, u: 1e-6, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/** The value of a quantity QUANTITY accepts, to compare a request with a limit. */
function quantityValue(quantity: string): number {
  const [, number = '0', suffix = ''] = QUANTITY.exec(quantity) ?? [];
  const scale = /^[eE]/.test(suffix) ? 10 ** Number(suffix.slice(1)) : (SUFFIX[suffix] ?? 1);
  return Number(number) * scale;
}
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_LABEL_MAX = 63;

function annotations(pod: V1Pod): Record<string, string> {
  return pod.metadata?.annotations ?? {};
}

function hasSidecar(pod: V1Pod): boolean {
  const named = (c: V1Container) => c.name === SIDECAR_CONTAINER_NAME;
  return (pod.spec?.containers ?? []).some(named) || (pod.spec?.initContainers ?? []).some(named);
}

// Ordered like Pepr's shouldSkipRequest: the first check that returns a reason decides. Idempotency
// comes first so that a reinvocation or a re-submitted pod is never touched again.
const CHECKS: readonly Check[] = [
  ({ pod }) =>
    hasSidecar(pod) || annotations(pod)[ANNOTATION_STATUS] !== undefined
      ? { reason: 'already-injected', message: `pod already has the ${SIDECAR_CONTAINER_NAME} sidecar` }
      : undefined,
  ({ pod }) =>
    annotations(pod)[ANNOTATION_INJECT] === INJECT_FALSE
      ? { reason: 'opted-out', message: `pod annotation ${ANNOTATION_INJECT}: "${INJECT_FALSE}"` }
      : undefined,
  ({ pod, namespace }) =>
    annotations(pod)[ANNOTATION_INJECT] === INJECT_TRUE || namespace?.metadata?.labels?.[LABEL_INJECTION] === INJECTION_ENABLED
      ? undefined
      : {
          reason: 'not-selected',
          message: `neither pod annotation ${ANNOTATION_INJECT}: "${INJECT_TRUE}" nor namespace label ${LABEL_INJECTION}=${INJECTION_ENABLED}`,
        },
  // The namespace label asks for the sidecar wherever there is something to serve; a pod that asks by
  // annotation gets it anyway, and serves the namespace's integrations once they are created.
  ({ pod, integrations }) =>
    annotations(pod)[ANNOTATION_INJECT] !== INJECT_TRUE && integrations.length === 0
      ? {
          reason: 'no-integrations',
          message: `namespace label ${LABEL_INJECTION}=${INJECTION_ENABLED}, but the namespace has no ExternalIntegration`,
        }
      : undefined,
  ({ pod }) =>
    pod.spec?.hostNetwork === true
      ? {
          reason: 'host-network',
          message: 'pod uses hostNetwork',
          warning: `breakwater: sidecar not injected: the pod uses hostNetwork, where ${proxyBaseUrl()} would be shared with the node`,
        }
      : undefined,
  // A regular container that never exits keeps a Job's pod running for ever; a native sidecar is
  // stopped once the app containers are done. Refused with a reason the Job's Events show, rather
  // than a Job that never completes (and a CronJob that stops starting new ones).
  ({ pod, settings }) => {
    const restartPolicy = pod.spec?.restartPolicy;
    if (sidecarMode(settings) !== 'container' || (restartPolicy !== 'Never' && restartPolicy !== 'OnFailure')) return undefined;
    const since = `${NATIVE_SIDECAR_SINCE.major}.${NATIVE_SIDECAR_SINCE.minor}`;
    return {
      reason: 'runs-to-completion',
      message: `pod runs to completion (restartPolicy ${restartPolicy}) and the sidecar would be a regular container`,
      warning: `breakwater: sidecar not injected: the pod runs to completion (restartPolicy ${restartPolicy}), and a sidecar in a regular container would keep it from completing; native sidecars (Kubernetes ${since} and later) do not`,
    };
  },
];

export function inject(input: InjectInput): InjectResult {
  const pod = structuredClone(input.pod);
  const warnings = annotationWarnings(input.pod);
  for (const check of CHECKS) {
    const skip = check(input);
    if (skip) {
      return {
        pod,
        injected: false,
        reason: skip.reason,
        message: skip.message,
        warnings: skip.warning === undefined ? warnings : [...warnings, skip.warning],
      };
    }
  }

  const { requested, selected } = selectIntegrations(input.pod, input.integrations, warnings);
  const mode = sidecarMode(input.settings);
  // A projected ServiceAccount token needs the pod's ServiceAccount, which the API server's
  // ServiceAccount admission names before webhooks run; where it is off, the pod does not report.
  const settings = input.pod.spec?.serviceAccountName ? input.settings : { ...input.settings, report: undefined };
  const sidecar = sidecarContainer(input.pod, requested, selected, settings, warnings);
  const spec = pod.spec ?? { containers: [] };
  pod.spec = spec;
  if (mode === 'native') spec.initContainers = [{ ...sidecar, restartPolicy: 'Always' }, ...(spec.initContainers ?? [])];
  else spec.containers = [...spec.containers, sidecar];
  spec.volumes = [...(spec.volumes ?? []), ...sidecarVolumes(selected, settings)];
  // A named integration gets its variable even before it exists: its URL does not depend on it.
  const urls = requested.length > 0 ? requested : selected.map((s) => s.name);
  for (const container of spec.containers) {
    if (container.name !== SIDECAR_CONTAINER_NAME) container.env = withProxyEnv(container.env, urls);
  }
  const status: InjectionStatus = { version: input.settings.version, sidecar: mode, integrations: selected.map((i) => i.name) };
  pod.metadata = { ...pod.metadata, annotations: { ...pod.metadata?.annotations, [ANNOTATION_STATUS]: JSON.stringify(status) } };
  const names = status.integrations.length > 0 ? status.integrations.join(', ') : 'none yet';
  return { pod, injected: true, reason: 'injected', message: `injected ${mode} sidecar; integrations: ${names}`, warnings };
}

export function sidecarMode(settings: Pick<InjectSettings, 'mode' | 'serverVersion'>): 'native' | 'container' {
  if (settings.mode !== 'auto') return settings.mode;
  const { major, minor } = settings.serverVersion;
  const since = NATIVE_SIDECAR_SINCE;
  return major > since.major || (major === since.major && minor >= since.minor) ? 'native' : 'container';
}

function annotationWarnings(pod: V1Pod): string[] {
  const value = annotations(pod)[ANNOTATION_INJECT];
  if (value === undefined || value === INJECT_TRUE || value === INJECT_FALSE) return [];
  return [`breakwater: annotation ${ANNOTATION_INJECT} must be "${INJECT_TRUE}" or "${INJECT_FALSE}", got ${JSON.stringify(value)}; ignored`];
}

interface Selected {
  readonly name: string;
  readonly secrets: readonly string[];
}

/**
 * The names the pod asked for (none: every integration of the namespace, now or later) and those of
 * them that exist now, in a stable order. Only the existing ones' Secrets can be mounted.
 */
function selectIntegrations(
  pod: V1Pod,
  integrations: readonly NamespaceIntegration[],
  warnings: string[],
): { requested: string[]; selected: Selected[] } {
  const byName = new Map(integrations.map((i) => [i.metadata.name, i]));
  const requested = [
    ...new Set(
      (annotations(pod)[ANNOTATION_INTEGRATIONS] ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== ''),
    ),
  ];
  let chosen: NamespaceIntegration[];
  if (requested.length === 0) {
    chosen = [...byName.values()].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  } else {
    chosen = [];
    for (const name of requested) {
      const found = byName.get(name);
      if (found) chosen.push(found);
      else {
        const known = [...byName.keys()].sort().join(', ') || 'none';
        warnings.push(`breakwater: unknown integration ${JSON.stringify(name)} in ${ANNOTATION_INTEGRATIONS} (integrations in this namespace: ${known})`);
      }
    }
  }
  // The cache holds whatever the API server stored, valid or not; secretRefs reads it defensively.
  return { requested, selected: chosen.map((i) => ({ name: i.metadata.name, secrets: secretRefs(i.spec).map((ref) => ref.name) })) };
}

function secretNames(selected: readonly Selected[]): string[] {
  return [...new Set(selected.flatMap((s) => s.secrets))].sort();
}

/** A volume name is a DNS label; Secret names may be longer and hold dots, so those are hashed. */
export function secretVolumeName(secret: string): string {
  const plain = `${SECRET_VOLUME_PREFIX}${secret}`;
  if (plain.length <= DNS_LABEL_MAX && DNS_LABEL.test(secret)) return plain;
  return `${SECRET_VOLUME_PREFIX}${createHash('sha256').update(secret).digest('hex').slice(0, 16)}`;
}

function sidecarVolumes(selected: readonly Selected[], settings: InjectSettings): V1Volume[] {
  return [
    // Optional: a namespace whose ConfigMap is not rendered yet still gets running pods; the sidecar
    // picks the file up when it appears.
    { name: CONFIG_VOLUME_NAME, configMap: { name: CONFIG_MAP_NAME, optional: true } },
    ...secretNames(selected).map((name) => ({ name: secretVolumeName(name), secret: { secretName: name, optional: true } })),
    // The sqlite: delivery store. It survives a restart of the sidecar container, not the pod's deletion.
    { name: DATA_VOLUME_NAME, emptyDir: {} },
    // The pod's own ServiceAccount token, bound to the pod and good only for our audience: the
    // operator learns from it which pod reports. Mounted into the sidecar only.
    ...(settings.report
      ? [
          {
            name: REPORT_TOKEN_VOLUME_NAME,
            projected: {
              sources: [{ serviceAccountToken: { audience: REPORT_TOKEN_AUDIENCE, expirationSeconds: REPORT_TOKEN_EXPIRATION_SECONDS, path: 'token' } }],
            },
          },
        ]
      : []),
  ];
}

function sidecarMounts(selected: readonly Selected[], settings: InjectSettings): V1VolumeMount[] {
  return [
    { name: CONFIG_VOLUME_NAME, mountPath: CONFIG_DIR, readOnly: true },
    ...secretNames(selected).map((name) => ({ name: secretVolumeName(name), mountPath: `${SECRETS_DIR}/${name}`, readOnly: true })),
    { name: DATA_VOLUME_NAME, mountPath: DATA_DIR },
    ...(settings.report ? [{ name: REPORT_TOKEN_VOLUME_NAME, mountPath: REPORT_TOKEN_DIR, readOnly: true }] : []),
  ];
}

/**
 * The injected sidecar's memory settings, from its container's memory limit: the one place that knows
 * the limit (a pod may override it). Left alone, V8 sizes its heap from the memory it sees: in a
 * container whose 256Mi limit Node reads, semi-spaces of 1 MB and an old generation of 256 MB, as
 * large as the whole limit; where it sees the node's memory instead (a limit it does not read, or a
 * workstation), semi-spaces of 16 MB, which hold some 30 MB more at 1,000 calls/s. NODE_OPTIONS pins
 * 1 MB semi-spaces, and an old generation of half the limit, so that V8 collects harder before the
 * container reaches its limit rather than the kernel killing it; it replaces the image's NODE_OPTIONS,
 * so --enable-source-maps is repeated. MALLOC_ARENA_MAX: glibc gives threads that allocate at once
 * (V8's compiler and collector helpers) arenas of their own, up to 8 per core, and each keeps what
 * its peak left free; two shared arenas hold about 7 MB less at 1,000 calls/s. The benchmark runs the
 * sidecar with these too.
 */
export function sidecarRuntimeEnv(memoryLimit: string): V1EnvVar[] {
  const oldSpaceMb = Math.max(SIDECAR_MIN_OLD_SPACE_MB, Math.floor(quantityValue(memoryLimit) / 2 / 2 ** 20));
  return [
    { name: 'NODE_OPTIONS', value: `--enable-source-maps --max-semi-space-size=${SIDECAR_SEMI_SPACE_MB} --max-old-space-size=${oldSpaceMb}` },
    { name: 'MALLOC_ARENA_MAX', value: String(SIDECAR_MALLOC_ARENAS) },
  ];
}

function override(pod: V1Pod, key: string, fallback: string, warnings: string[]): string {
  const value = annotations(pod)[key];
  if (value === undefined) return fallback;
  if (QUANTITY.test(value)) return value;
  warnings.push(`breakwater: annotation ${key} is not a resource quantity: ${JSON.stringify(value)}; using ${fallback}`);
  return fallback;
}

function sidecarContainer(
  pod: V1Pod,
  requested: readonly string[],
  selected: readonly Selected[],
  settings: InjectSettings,
  warnings: string[],
): V1Container {
  const cpu = override(pod, ANNOTATION_SIDECAR_CPU, settings.cpu, warnings);
  let memory = override(pod, ANNOTATION_SIDECAR_MEMORY, settings.memory, warnings);
  let memoryLimit = override(pod, ANNOTATION_SIDECAR_MEMORY_LIMIT, settings.memoryLimit, warnings);
  // A request above the limit would have the API server refuse the whole pod: the override wins and
  // the other value follows it.
  if (quantityValue(memory) > quantityValue(memoryLimit)) {
    if (annotations(pod)[ANNOTATION_SIDECAR_MEMORY_LIMIT] === memoryLimit) memory = memoryLimit;
    else memoryLimit = memory;
  }
  const [command, subcommand] = SIDECAR_COMMAND;
  const env = [
    ...sidecarRuntimeEnv(memoryLimit),
    ...(settings.deliveryStore ? deliveryStoreEnv(settings.deliveryStore) : []),
    ...(settings.report ? reportEnv(settings.report) : []),
  ];
  return {
    name: SIDECAR_CONTAINER_NAME,
    image: settings.image,
    imagePullPolicy: 'IfNotPresent',
    command: [command],
    args: [
      subcommand,
      `--config=${CONFIG_PATH}`,
      // Resolved by the sidecar from the namespace's file as it changes, so an integration created after
      // the pod is served; the sidecar says when one needs a Secret that only a restart would mount.
      `--integrations=${requested.length > 0 ? requested.join(',') : ALL_INTEGRATIONS}`,
      `--secrets-dir=${SECRETS_DIR}`,
      `--port=${PROXY_PORT}`,
      `--admin-port=${SIDECAR_ADMIN_PORT}`,
      `--log-level=${settings.logLevel}`,
    ],
    ports: [{ name: SIDECAR_ADMIN_PORT_NAME, containerPort: SIDECAR_ADMIN_PORT, protocol: 'TCP' }],
    // Startup gates the app containers (native mode) on a listening proxy, not on a loaded config:
    // a namespace without integrations yet must still start.
    startupProbe: { httpGet: { path: HEALTH_PATH, port: SIDECAR_ADMIN_PORT_NAME }, periodSeconds: 1, failureThreshold: 30 },
    readinessProbe: { httpGet: { path: READY_PATH, port: SIDECAR_ADMIN_PORT_NAME }, periodSeconds: 5 },
    resources: { requests: { cpu, memory }, limits: { memory: memoryLimit } },
    securityContext: {
      runAsNonRoot: true,
      runAsUser: SIDECAR_UID,
      runAsGroup: SIDECAR_UID,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts: sidecarMounts(selected, settings),
    env,
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
}

/**
 * The shared store for the sidecar only: the app containers never see its password. The Secret is
 * optional: a namespace without it would otherwise hold the sidecar at CreateContainerConfigError,
 * and a native sidecar the app with it, for a store only respond-async calls use. Without it the
 * sidecar starts, its async calls get 503 store_unavailable, and its log says the store refused it.
 */
function deliveryStoreEnv(store: NonNullable<InjectSettings['deliveryStore']>): V1EnvVar[] {
  return [
    { name: ENV_DELIVERY_STORE, value: store.url },
    ...(store.passwordSecret
      ? [{ name: ENV_DELIVERY_STORE_PASSWORD, valueFrom: { secretKeyRef: { name: store.passwordSecret.name, key: store.passwordSecret.key, optional: true } } }]
      : []),
  ];
}

function reportEnv(report: NonNullable<InjectSettings['report']>): V1EnvVar[] {
  const ca = report.caBundle();
  return [{ name: ENV_REPORT_URL, value: report.url }, ...(ca ? [{ name: ENV_REPORT_CA, value: ca }] : [])];
}

/** Adds the proxy URLs the app needs; a variable the app already defines is left as the app set it. */
function withProxyEnv(env: V1EnvVar[] | undefined, names: readonly string[]): V1EnvVar[] {
  const existing = env ?? [];
  const defined = new Set(existing.map((e) => e.name));
  const wanted: V1EnvVar[] = [
    { name: ENV_PROXY_URL, value: proxyBaseUrl() },
    ...names.map((name) => ({ name: integrationEnvVar(name), value: integrationUrl(name) })),
  ];
  return [...existing, ...wanted.filter((e) => !defined.has(e.name))];
}
