// Writes under our field manager: server-side apply of whole objects, merge patches of status.
import type { V1ConfigMap } from '@kubernetes/client-node';
import { FIELD_MANAGER } from '../api/names.ts';
import type { KubeClient } from './client.ts';
import { CONFIG_MAPS, EXTERNAL_INTEGRATIONS, objectPath } from './resources.ts';

/** The patch types the API server takes, sent as the PATCH's Content-Type. */
export const PATCH = {
  apply: 'application/apply-patch+yaml',
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
} as const;

/** Server-side apply of a ConfigMap: creates it or brings the fields we own to `desired`. */
export function applyConfigMap(client: KubeClient, desired: V1ConfigMap & { metadata: { name: string; namespace: string } }, signal?: AbortSignal): Promise<V1ConfigMap> {
  const { name, namespace } = desired.metadata;
  return client.requestJson<V1ConfigMap>('PATCH', objectPath(CONFIG_MAPS, namespace, name), {
    // JSON is YAML, so the apply body needs no YAML encoder.
    body: { apiVersion: 'v1', kind: 'ConfigMap', ...desired },
    contentType: PATCH.apply,
    query: { fieldManager: FIELD_MANAGER, force: true },
    signal,
  });
}

export interface StatusTarget {
  readonly namespace: string;
  readonly name: string;
}

/**
 * A merge patch of the `/status` subresource of an ExternalIntegration, under our field manager. A
 * merge patch replaces lists whole, which is what conditions need, and costs the API server less than
 * an apply. Status writes never bump `metadata.generation`, which is how the controller tells its own
 * writes from a user's edit.
 */
export async function patchIntegrationStatus(client: KubeClient, target: StatusTarget, status: object, signal?: AbortSignal): Promise<void> {
  await client.requestJson('PATCH', `${objectPath(EXTERNAL_INTEGRATIONS, target.namespace, target.name)}/status`, {
    body: { status },
    contentType: PATCH.merge,
    query: { fieldManager: FIELD_MANAGER },
    signal,
  });
}
