// Admission warnings reach whoever created the pod. For a Deployment's pod that is the ReplicaSet
// controller, which drops them: a typo in the pod template (`inject: "yes"`, an unknown integration)
// gave pods without the sidecar, or without an integration, and said so nowhere a user looks. A warned
// admission is therefore also recorded as an Event on the object the user manages, the pod's top
// controller (a ReplicaSet is followed to its Deployment), where `kubectl describe` and `kubectl
// events` show it. A pod without a controller was created by someone who saw the warnings already.
import type { V1ObjectMeta, V1OwnerReference } from '@kubernetes/client-node';
import { EVENT_ACTION_ADMIT, REASON_INJECTED_WITH_WARNINGS, REASON_SIDECAR_NOT_INJECTED } from '../api/names.ts';
import type { KubeClient } from '../kube/client.ts';
import type { EventRecorder, EventTarget } from '../kube/events.ts';
import type { Logger } from '../runtime/logger.ts';
import type { AdmissionOutcome, AdmissionRequest } from './admission.ts';

/** Each replica of a Deployment hits the same warning; one Event per owner and note in this window. */
const REPEAT_WINDOW_MS = 10 * 60 * 1000;
/** Past this many remembered notes, the expired ones are dropped. */
const MAX_REMEMBERED = 1024;
/** Prefix of every warning inject() writes, redundant in an Event the operator reports. */
const WARNING_PREFIX = 'breakwater: ';

export interface AdmissionEventsOptions {
  readonly client: KubeClient;
  readonly recorder: EventRecorder;
  readonly logger: Logger;
  readonly now?: () => number;
}

export class AdmissionEvents {
  private readonly options: AdmissionEventsOptions;
  private readonly now: () => number;
  private readonly recorded = new Map<string, number>();

  constructor(options: AdmissionEventsOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  /** Records the admission's warnings on the pod's top controller; never throws, never delays the answer. */
  record(request: AdmissionRequest, outcome: AdmissionOutcome): void {
    const warnings = outcome.response.warnings ?? [];
    if (warnings.length === 0 || request.dryRun) return;
    const meta = (request.object as { metadata?: V1ObjectMeta } | undefined)?.metadata;
    const owner = meta?.ownerReferences?.find((o) => o.controller);
    const namespace = request.namespace ?? meta?.namespace;
    if (owner === undefined || namespace === undefined) return;
    const said = warnings.map((w) => (w.startsWith(WARNING_PREFIX) ? w.slice(WARNING_PREFIX.length) : w)).join('; ');
    const reason = outcome.result === 'injected' ? REASON_INJECTED_WITH_WARNINGS : REASON_SIDECAR_NOT_INJECTED;
    // The pod's own name is left out: every replica of a rollout says the same.
    if (!this.firstInWindow(`${owner.uid}\0${reason}\0${said}`)) return;
    const note = `pod ${meta?.name ?? `${meta?.generateName ?? ''}…`}: ${said}`;
    this.topController(namespace, owner)
      .then((target) => this.options.recorder.record(target, { type: 'Warning', reason, action: EVENT_ACTION_ADMIT, note }))
      .catch((error: Error) => this.options.logger.warn({ err: error.message, namespace, owner: owner.name }, 'could not record the admission warning as an Event'));
  }

  /** The owner, or the Deployment that owns it when it is a ReplicaSet. */
  private async topController(namespace: string, owner: V1OwnerReference): Promise<EventTarget> {
    const target = { apiVersion: owner.apiVersion, kind: owner.kind, namespace, name: owner.name, uid: owner.uid };
    if (owner.apiVersion !== 'apps/v1' || owner.kind !== 'ReplicaSet') return target;
    const rs = await this.options.client.getJson<{ metadata: V1ObjectMeta }>(
      `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/replicasets/${encodeURIComponent(owner.name)}`,
    );
    const up = rs.metadata.ownerReferences?.find((o) => o.controller);
    return up ? { apiVersion: up.apiVersion, kind: up.kind, namespace, name: up.name, uid: up.uid } : target;
  }

  /** True once per key in REPEAT_WINDOW_MS. */
  private firstInWindow(key: string): boolean {
    const now = this.now();
    const last = this.recorded.get(key);
    if (last !== undefined && now - last < REPEAT_WINDOW_MS) return false;
    if (this.recorded.size >= MAX_REMEMBERED) {
      for (const [k, at] of this.recorded) if (now - at >= REPEAT_WINDOW_MS) this.recorded.delete(k);
    }
    this.recorded.set(key, now);
    return true;
  }
}
