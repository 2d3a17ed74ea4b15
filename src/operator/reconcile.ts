// The Reconciler: one namespace at a time, from the informers' current state (never from an event):
// 1. assess every ExternalIntegration: the API validator, then that each Secret it names exists (by
//    metadata only; no value is ever read);
// 2. render the valid ones into ConfigMap `breakwater-integrations`, the exact document stream
//    `breakwater sidecar --config` reads, by server-side apply with a content-hash annotation; a
//    namespace whose last integration went keeps the ConfigMap with an empty stream, so mounted pods
//    drop the integrations instead of keeping stale ones;
// 3. write each resource's status (observedGeneration, Ready with reason and message, url), and record
//    an Event when Ready changes.
// Every write is skipped when the cache already shows the desired state, so a rerun changes nothing.
// The cache shows our own writes a moment late; `WriteMemo` covers that moment, so a reconcile that
// runs in it neither writes the same thing again nor announces the same transition twice.
import { createHash } from 'node:crypto';
import { renderIntegrations } from '../api/documents.ts';
import {
  ANNOTATION_CONFIG_HASH,
  API_VERSION,
  CONDITION_READY,
  CONFIG_KEY,
  COMPONENT_SIDECAR_CONFIG,
  CONFIG_MAP_NAME,
  integrationUrl,
  managedLabels,
  KIND,
  REASON_CONFIGURED,
  REASON_CONFIG_TOO_LARGE,
  REASON_INVALID_SPEC,
  REASON_SECRET_NOT_FOUND,
} from '../api/names.ts';
import type { Condition, ExternalIntegration, ExternalIntegrationStatus } from '../api/schema.ts';
import { secretRefs } from '../api/secret-refs.ts';
import { validateIntegration } from '../api/validate.ts';
import { applyConfigMap, patchIntegrationStatus } from '../kube/apply.ts';
import type { KubeClient } from '../kube/client.ts';
import { isNotFound } from '../kube/errors.ts';
import type { EventRecorder } from '../kube/events.ts';
import type { Informer } from '../kube/informer.ts';
import type { SecretMetadata, StoredConfigMap, StoredIntegration } from '../kube/resources.ts';
import type { Logger } from '../runtime/logger.ts';
import type { Reconciler, Result } from './controller.ts';

export interface ReconcileDeps {
  readonly client: KubeClient;
  readonly integrations: Informer<StoredIntegration>;
  readonly secrets: Informer<SecretMetadata>;
  readonly configMaps: Informer<StoredConfigMap>;
  readonly recorder: EventRecorder;
  readonly logger: Logger;
  readonly memo: WriteMemo;
  readonly now?: () => Date;
}

interface Written<T> {
  /** The resourceVersion the cache showed when we wrote; once it shows another, the cache knows better. */
  readonly basedOn: string;
  readonly value: T;
}

/** What this process last wrote, per namespace. */
export class WriteMemo {
  private readonly statuses = new Map<string, Map<string, Written<ExternalIntegrationStatus>>>();
  private readonly configMaps = new Map<string, Written<string>>();

  /** The status the resource has: ours if the cache has not caught up with our write yet. */
  status(stored: StoredIntegration): ExternalIntegrationStatus | undefined {
    const written = this.statuses.get(stored.metadata.namespace ?? '')?.get(stored.metadata.uid ?? '');
    return written && written.basedOn === stored.metadata.resourceVersion ? written.value : stored.status;
  }

  wroteStatus(stored: StoredIntegration, status: ExternalIntegrationStatus): void {
    const namespace = stored.metadata.namespace ?? '';
    let byUid = this.statuses.get(namespace);
    if (!byUid) this.statuses.set(namespace, (byUid = new Map()));
    byUid.set(stored.metadata.uid ?? '', { basedOn: stored.metadata.resourceVersion ?? '', value: status });
  }

  /** Forgets resources of the namespace that no longer exist. */
  keepOnly(namespace: string, live: readonly StoredIntegration[]): void {
    const byUid = this.statuses.get(namespace);
    if (!byUid) return;
    const uids = new Set(live.map((i) => i.metadata.uid ?? ''));
    for (const uid of byUid.keys()) if (!uids.has(uid)) byUid.delete(uid);
    if (byUid.size === 0) this.statuses.delete(namespace);
  }

  /** Whether we already wrote `hash` on top of the ConfigMap the cache shows. */
  configMapPending(namespace: string, cached: StoredConfigMap | undefined, hash: string): boolean {
    const written = this.configMaps.get(namespace);
    return written !== undefined && written.value === hash && written.basedOn === (cached?.metadata.resourceVersion ?? '');
  }

  wroteConfigMap(namespace: string, cached: StoredConfigMap | undefined, hash: string): void {
    this.configMaps.set(namespace, { basedOn: cached?.metadata.resourceVersion ?? '', value: hash });
  }

  /**
   * The cache shows what we wrote: the write is no longer pending. Kept, it would read a ConfigMap
   * deleted later (the cache shows none, as before our first write) as ours still on its way.
   */
  configMapShown(namespace: string): void {
    this.configMaps.delete(namespace);
  }
}

/** Whether one integration is ready, and the document the sidecars get when its spec is valid. */
export type Readiness =
  | { readonly ready: true; readonly document: ExternalIntegration }
  | { readonly ready: false; readonly reason: string; readonly message: string; readonly document?: ExternalIntegration };

/**
 * What the sidecar gets for one stored resource: apiVersion, kind, name, namespace and spec. Server
 * fields (status, managedFields, uid, …) mean nothing to it and would change the hash on every write.
 */
export function sidecarDocument(stored: StoredIntegration): unknown {
  return {
    apiVersion: stored.apiVersion,
    kind: stored.kind,
    metadata: { name: stored.metadata.name, namespace: stored.metadata.namespace },
    spec: stored.spec,
  };
}

/** Whether one integration can be served, and if not, why, with field paths. */
export function assess(stored: StoredIntegration, secretExists: (name: string) => boolean): Readiness {
  const result = validateIntegration(sidecarDocument(stored));
  if (!result.ok) {
    return {
      ready: false,
      reason: REASON_INVALID_SPEC,
      message: result.issues.map((issue) => `${issue.path}: ${issue.message}`).join('; '),
    };
  }
  const missing = secretRefs(result.value.spec).filter((ref) => !secretExists(ref.name));
  if (missing.length > 0) {
    const namespace = stored.metadata.namespace ?? '';
    // Still served, so the app is told what is wrong instead of getting 404 unknown_integration, and
    // the Secret's mount (optional) fills in when it is created.
    return {
      ready: false,
      reason: REASON_SECRET_NOT_FOUND,
      message: `${missing.map(({ path, name }) => `${path}: Secret "${name}" not found in namespace "${namespace}"`).join('; ')}; calls get 503 credentials_unavailable until it exists`,
      document: result.value,
    };
  }
  return { ready: true, document: result.value };
}

/** The status a resource should carry; lastTransitionTime moves only when Ready's status flips. */
export function desiredStatus(
  stored: StoredIntegration,
  current: ExternalIntegrationStatus | undefined,
  readiness: Readiness,
  now: Date,
): ExternalIntegrationStatus {
  const generation = stored.metadata.generation ?? 0;
  const previous = readyCondition(current);
  const status: Condition['status'] = readiness.ready ? 'True' : 'False';
  const condition: Condition = {
    type: CONDITION_READY,
    status,
    reason: readiness.ready ? REASON_CONFIGURED : readiness.reason,
    message: readiness.ready ? '' : readiness.message,
    observedGeneration: generation,
    lastTransitionTime:
      previous?.status === status && previous.lastTransitionTime ? previous.lastTransitionTime : rfc3339(now),
  };
  // A merge patch replaces the list whole: the fleet controller's VendorHealthy is carried over as it is.
  const others = (current?.conditions ?? []).filter((c) => c.type !== CONDITION_READY);
  return { observedGeneration: generation, conditions: [condition, ...others], url: integrationUrl(stored.metadata.name) };
}

function readyCondition(status: ExternalIntegrationStatus | undefined): Condition | undefined {
  return status?.conditions?.find((c) => c.type === CONDITION_READY);
}

/** The most sidecar config one ConfigMap carries: the API server refuses data over 1 MiB in all (core.MaxSecretSize). */
export const CONFIG_MAP_DATA_MAX_BYTES = 1024 * 1024;

function contentHash(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

async function reconcileNamespace(deps: ReconcileDeps, namespace: string, signal: AbortSignal): Promise<Result> {
  const now = deps.now?.() ?? new Date();
  const secretExists = (name: string) => deps.secrets.get(namespace, name) !== undefined;
  const items = deps.integrations
    .list(namespace)
    .filter((i) => !i.metadata.deletionTimestamp)
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  let assessed = items.map((stored) => ({ stored, readiness: assess(stored, secretExists) }));

  // The ConfigMap first: Ready=True promises the integration is in it.
  const served = assessed.flatMap(({ readiness }) => (readiness.document ? [readiness.document] : []));
  const text = renderIntegrations(served);
  const bytes = Buffer.byteLength(text);
  if (bytes <= CONFIG_MAP_DATA_MAX_BYTES) await writeConfigMap(deps, namespace, text, served.length, items.length > 0, signal);
  else {
    // Applied, it would be refused on every try, and the statuses after it never written. The
    // sidecars keep the config they have; each integration says why nothing new reaches them.
    const message =
      `this namespace's integrations make ${bytes} bytes of sidecar config, more than the ${CONFIG_MAP_DATA_MAX_BYTES} one ConfigMap holds; ` +
      'the sidecars keep the config they had. Shorten fallback bodies, or move integrations to another namespace';
    deps.logger.warn({ namespace, bytes, limit: CONFIG_MAP_DATA_MAX_BYTES }, 'sidecar config too large for a ConfigMap; not written');
    assessed = assessed.map(({ stored, readiness }) => ({ stored, readiness: readiness.ready ? { ready: false, reason: REASON_CONFIG_TOO_LARGE, message } : readiness }));
  }

  deps.memo.keepOnly(namespace, items);
  await Promise.all(assessed.map(({ stored, readiness }) => writeStatus(deps, stored, readiness, now, signal)));
  return {};
}

/** Writes `text` as the namespace's ConfigMap unless the cache shows it, or our write of it is on its way. */
async function writeConfigMap(deps: ReconcileDeps, namespace: string, text: string, integrations: number, anyIntegration: boolean, signal: AbortSignal): Promise<void> {
  const hash = contentHash(text);
  const existing = deps.configMaps.get(namespace, CONFIG_MAP_NAME);
  const labels = managedLabels(COMPONENT_SIDECAR_CONFIG);
  const shown =
    existing?.data?.[CONFIG_KEY] === text &&
    existing.metadata.annotations?.[ANNOTATION_CONFIG_HASH] === hash &&
    Object.entries(labels).every(([k, v]) => existing.metadata.labels?.[k] === v);
  if (shown) deps.memo.configMapShown(namespace);
  if ((!anyIntegration && !existing) || shown || deps.memo.configMapPending(namespace, existing, hash)) return;
  await applyConfigMap(
    deps.client,
    {
      // Labelled so it can be found: it outlives an uninstall while the integrations it serves exist.
      metadata: { name: CONFIG_MAP_NAME, namespace, labels, annotations: { [ANNOTATION_CONFIG_HASH]: hash } },
      data: { [CONFIG_KEY]: text },
    },
    signal,
  );
  deps.memo.wroteConfigMap(namespace, existing, hash);
  deps.logger.info({ namespace, integrations, hash }, 'rendered ConfigMap');
}

async function writeStatus(deps: ReconcileDeps, stored: StoredIntegration, readiness: Readiness, now: Date, signal: AbortSignal): Promise<void> {
  const current = deps.memo.status(stored);
  const status = desiredStatus(stored, current, readiness, now);
  if (sameStatus(current, status)) return;
  const namespace = stored.metadata.namespace ?? '';
  const name = stored.metadata.name;
  try {
    await patchIntegrationStatus(deps.client, { namespace, name }, status, signal);
  } catch (error) {
    // Deleted since the cache saw it: its delete event brings this namespace back.
    if (isNotFound(error)) return;
    throw error;
  }
  deps.memo.wroteStatus(stored, status);
  const before = readyCondition(current);
  const after = status.conditions?.[0];
  if (!after || (before?.status === after.status && before.reason === after.reason)) return;
  const target = { apiVersion: API_VERSION, kind: KIND, namespace, name, uid: stored.metadata.uid };
  const details = readiness.ready
    ? { type: 'Normal' as const, reason: REASON_CONFIGURED, action: 'Reconcile', note: `Serving at ${status.url} (ConfigMap ${CONFIG_MAP_NAME})` }
    : { type: 'Warning' as const, reason: readiness.reason, action: 'Reconcile', note: readiness.message };
  // An Event is a courtesy: it is sent in the background, and failing to record one must neither
  // delay nor fail (and so repeat) the reconcile.
  deps.recorder.record(target, details, signal).catch((error: unknown) => {
    if (!signal.aborted) deps.logger.warn({ namespace, name, err: error }, 'could not record event');
  });
}

function sameStatus(current: ExternalIntegrationStatus | undefined, desired: ExternalIntegrationStatus): boolean {
  return JSON.stringify(normalise(current)) === JSON.stringify(normalise(desired));
}

function normalise(status: ExternalIntegrationStatus | undefined): unknown {
  if (!status) return undefined;
  const conditions = status.conditions?.map((c) => ({
    type: c.type,
    status: c.status,
    reason: c.reason ?? '',
    message: c.message ?? '',
    observedGeneration: c.observedGeneration,
    lastTransitionTime: c.lastTransitionTime,
  }));
  return { observedGeneration: status.observedGeneration, conditions, url: status.url };
}

/** Kubernetes' metav1.Time: seconds precision. */
function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function namespaceReconciler(deps: ReconcileDeps): Reconciler {
  return (namespace, signal) => reconcileNamespace(deps, namespace, signal);
}
